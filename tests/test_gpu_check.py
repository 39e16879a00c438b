"""The prepared GPU measurement script runs its CPU path end to end at a small size and writes its table."""

from __future__ import annotations

import json

from benchmarks.gpu_check import _split_policies, main


def test_gpu_check_cpu_path_writes_every_section(tmp_path):
    out = tmp_path / "gc"
    assert (
        main(
            [
                "--device",
                "cpu",
                "--arch",
                "small",
                "--size",
                "64x64",
                "--sections",
                "env,precision,official,stages",
                "--policies",
                "fp32",
                "--warmup",
                "0",
                "--repeat",
                "1",
                "--stage-repeat",
                "1",
                "--stage-methods",
                "bicubic",
                "--metrics",
                "psnr",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads((out / "gpu_check.json").read_text())
    assert list(data) == ["env", "precision", "official", "stages"]
    assert data["env"][0] == {"item": "device", "value": "cpu", "section_s": data["env"][0]["section_s"]}
    fp32 = data["precision"][0]
    assert fp32["policy"] == "fp32" and fp32["size_out"] == "256x256" and fp32["latency_ms"] > 0
    assert fp32["max_abs_diff"] == 0 and fp32["codes_changed_pct"] == 0
    assert {"vq_encode_ms", "unet_ms", "vq_decode_ms"} <= set(fp32)
    assert data["official"][0]["status"] == "skipped"  # no --official-repo given
    stages = {(r["stage"], r.get("what"), r.get("shape")): r for r in data["stages"]}
    assert stages[("sr", "bicubic", "m3fd")]["frames_per_s"] > 0 and ("sr", "bicubic", "fmb") in stages
    grid = stages[("paper grid (projected)", next(k[1] for k in stages if k[0].startswith("paper")), None)]
    assert grid["sr_hours"] > 0
    assert {r["stage"] for r in data["stages"] if r["status"] == "skipped"} >= {"detection", "segmentation"}
    assert "## precision" in (out / "gpu_check.md").read_text()


def test_a_failing_section_is_a_row_and_the_run_goes_on(tmp_path):
    out = tmp_path / "gc"
    assert main(["--device", "cpu", "--sections", "precision,env", "--size", "64xbad", "--out", str(out)]) == 0
    data = json.loads((out / "gpu_check.json").read_text())
    assert data["precision"][0]["status"].startswith("error: ValueError")
    assert data["env"][0]["value"] == "cpu"


def test_policies_split_outside_braces():
    assert _split_policies('fp32,mixed,{"unet":"bf16","decode":"fp16"}') == [
        "fp32",
        "mixed",
        '{"unet":"bf16","decode":"fp16"}',
    ]
