"""The Ray executor gives the same results.csv as the in-process one."""

import pandas as pd
import pytest

from benchmarks.run import main as run_main

ARGS = [
    "--methods",
    "bicubic,nearest",
    "--tasks",
    "quality",
    "--metrics",
    "psnr,ssim",
    "--limit",
    "2",
    "--quiet",
    "--no-report",
]


def test_ray_equals_local(tmp_path):
    pytest.importorskip("ray")
    assert run_main([*ARGS, "--out", str(tmp_path / "local")]) == 0
    assert run_main([*ARGS, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    local = pd.read_csv(tmp_path / "local" / "results.csv")
    remote = pd.read_csv(tmp_path / "ray" / "results.csv")
    pd.testing.assert_frame_equal(local, remote)
    assert len(local) == 4
