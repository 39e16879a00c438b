"""``benchmarks.speed.perf --official-repo``: the official DifIISR sampler (imported from
../shared/reference/official_difiisr, never copied) and the project's ``difiisr`` on the same random
dense weights, LR frame and noise give the same output in fp32 on CPU, 64x64 LR."""

from __future__ import annotations

import csv
import sys

import pytest
from conftest import shared_path

from benchmarks.speed.official import COLUMNS, official_config, official_imports
from benchmarks.speed.perf import main as perf_main

TOL_FP32 = 1e-4  # max |official - project| of the [-1, 1] output, both fp32 on CPU


def test_official_sampler_side_by_side_on_cpu(tmp_path, capsys):
    repo = shared_path("reference", "official_difiisr", what="official DifIISR code")
    pytest.importorskip("einops")
    pytest.importorskip("timm")
    out = tmp_path / "official.csv"
    assert (
        perf_main(
            [
                "--official-repo",
                str(repo),
                "--arch",
                "small",
                "--sizes",
                "64x64",
                "--device",
                "cpu",
                "--warmup",
                "0",
                "--repeat",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with open(out) as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    assert list(rows["official fp32"]) == COLUMNS
    assert rows["project fp32"]["status"] == rows["official fp32"]["status"] == "ok", rows
    assert rows["official as shipped (fp16)"]["status"] == "skipped"  # inference.py's fp16 path is CUDA-only
    assert float(rows["project fp32"]["max_abs_diff"]) == 0.0
    assert 0.0 < float(rows["official fp32"]["max_abs_diff"]) <= TOL_FP32  # computed, and the same maths
    assert float(rows["official fp32"]["speedup"]) == 1.0  # the CPU baseline is the official fp32 sampler
    assert float(rows["project fp32"]["latency_ms"]) > 0 and float(rows["project fp32"]["speedup"]) > 0
    assert "| official fp32 |" in capsys.readouterr().out
    assert all("random dense weights" in r["note"] for r in rows.values() if r["status"] == "ok")


def test_official_packages_leave_no_trace_after_import():
    repo = shared_path("reference", "official_difiisr", what="official DifIISR code")
    pytest.importorskip("einops")
    pytest.importorskip("timm")
    with official_imports(repo) as load:
        unet_class = load("models.unet.UNetModelSwin")
        assert "models.unet" in sys.modules and str(repo) in sys.path
    assert unet_class.__name__ == "UNetModelSwin"
    assert str(repo) not in sys.path
    assert not [m for m in sys.modules if (getattr(sys.modules[m], "__file__", None) or "").startswith(str(repo))]


def test_official_repo_mistakes_are_one_error_line(tmp_path, capsys):
    assert perf_main(["--official-repo", str(tmp_path), "--arch", "small", "--device", "cpu", "--in-process"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "configs/DifIISR_test.yaml" in err[0]


def test_small_arch_reduces_widths_only():
    repo = shared_path("reference", "official_difiisr", what="official DifIISR code")
    full, small = official_config(repo, "full"), official_config(repo, "small")
    assert full["model"]["params"]["model_channels"] == 160 and small["model"]["params"]["model_channels"] == 32
    assert small["model"]["params"]["channel_mult"] == full["model"]["params"]["channel_mult"]
    assert small["autoencoder"]["params"]["n_embed"] == full["autoencoder"]["params"]["n_embed"]
