"""The prepared GPU measurement script runs its CPU path end to end at a small size and writes its table."""

from __future__ import annotations

import json

import pytest

from benchmarks.speed import gpu_check
from benchmarks.speed.gpu_check import main


def test_gpu_check_cpu_path_writes_every_section(tmp_path):
    out = tmp_path / "gc"
    assert (
        main(
            [
                "--device",
                "cpu",
                "--arch",
                "small",
                "--sizes",
                "64x64",
                "--sections",
                "env,precision,official,stages",
                "--precisions",
                "fp32",
                "--codebooks",
                "dense",
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
    assert data["env"][0] == {"item": "device", "value": "cpu", "section_ms": data["env"][0]["section_ms"]}
    fp32 = data["precision"][0]
    assert fp32["precision"] == "fp32" and fp32["size"] == "64x64" and fp32["size_out"] == "256x256"
    assert fp32["latency_ms"] > 0 and fp32["peak_gib"] != fp32["peak_gib"]  # ms; peak GiB is nan (CPU)
    assert fp32["max_abs_diff"] == 0 and fp32["codes_changed_pct"] == 0 and fp32["codebook"] == "dense"
    assert fp32["unchanged_px_max_abs_diff"] == fp32["decoder_only_max_abs_diff"] == 0 and fp32["meets_goal"]
    assert "random dense weights" in fp32["note"] and "emulated" in fp32["note"]
    assert {"vq_encode_ms", "unet_ms", "vq_decode_ms"} <= set(fp32)
    assert data["official"][0]["status"] == "skipped"  # no --official-repo given
    stages = {(r["stage"], r.get("what"), r.get("shape")): r for r in data["stages"]}
    assert stages[("sr", "bicubic", "m3fd")]["frames_per_s"] > 0 and ("sr", "bicubic", "fmb") in stages
    grid = stages[("paper grid (projected)", next(k[1] for k in stages if k[0].startswith("paper")), None)]
    assert grid["sr_hours"] > 0
    assert {r["stage"] for r in data["stages"] if r["status"] == "skipped"} >= {"detection", "segmentation"}
    assert "## precision" in (out / "gpu_check.md").read_text()


def test_compile_section_rows_default_then_cuda_graphs(tmp_path, monkeypatch):
    """The compile section's rows without an inductor build (torch.compile returns the function): cold and warm
    build, the default mode's steady state, then CUDA graphs, which on CPU compile in the default mode."""
    import torch

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    out = tmp_path / "gc"
    argv = ["--device", "cpu", "--arch", "small", "--sizes", "64x64", "--sections", "compile", "--repeat", "1"]
    assert main([*argv, "--compile-precision", "fp32", "--out", str(out)]) == 0
    rows = {r["build"]: r for r in json.loads((out / "gpu_check.json").read_text())["compile"]}
    assert list(rows) == [
        "cold (first call)",
        "warm (inductor cache, after dynamo reset)",
        "default: steady state",
        "reduce-overhead (first call)",
        "reduce-overhead: steady state",
    ]
    assert set(json.loads(rows["default: steady state"]["status"]).values()) == {"compiled"}
    graphs = rows["reduce-overhead: steady state"]
    assert set(json.loads(graphs["status"]).values()) == {"compiled (default: reduce-overhead needs CUDA)"}
    assert graphs["max_abs_diff"] == 0 and graphs["latency_ms"] > 0


def test_a_failing_section_is_a_row_and_the_run_goes_on(tmp_path, monkeypatch):
    def broken(args, device, size):
        raise ValueError(f"cannot measure {size}")

    monkeypatch.setitem(gpu_check.SECTIONS, "precision", broken)
    out = tmp_path / "gc"
    assert main(["--device", "cpu", "--sections", "precision,env", "--sizes", "64x64,32x32", "--out", str(out)]) == 0
    data = json.loads((out / "gpu_check.json").read_text())
    assert [(r["size"], r["status"]) for r in data["precision"]] == [
        ("64x64", "error: ValueError: cannot measure 64x64"),
        ("32x32", "error: ValueError: cannot measure 32x32"),
    ]
    assert data["env"][0]["value"] == "cpu"


@pytest.mark.parametrize(
    "argv",
    [
        ["--sizes", "64xbad"],
        ["--precisions", "fp32,bf32"],
        ["--policies", "fp32"],
        ["--warmup", "-1"],
        ["--compile-precision", "bf32"],
        ["--compile-precision", "fp32,mixed"],
        ["--codebooks", "dense,trained"],
    ],
)
def test_option_mistakes_are_one_error_line(argv, tmp_path, capsys):
    assert main(["--device", "cpu", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err


def test_markdown_numbers_have_no_exponent_in_the_millisecond_range():
    assert [gpu_check._fmt(v) for v in (18410.047, 3799.17, 0.047712, float("nan"), 3)] == [
        "18410",
        "3799",
        "0.04771",
        "nan",
        "3",
    ]
