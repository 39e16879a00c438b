"""``benchmarks.speed.perf --stages``: the stage table of a run (frame loading and PNG writing included) and the A/B
of the runner's sequential and overlapped frame pipelines in child processes. Timings are printed, never asserted."""

import csv
import os
from pathlib import Path

from conftest import noise_frames

from benchmarks.speed import perf


def _suite(tmp_path):
    frames = noise_frames(tmp_path / "frames", 3)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(f"datasets: ['folder:{frames}']\nmethods: [bicubic, nearest]\nmetrics: [psnr, sd]\ntasks: {{}}\n")
    return suite


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_stages_table_has_the_frame_pipeline_stages(tmp_path, capsys):
    out = tmp_path / "stages.csv"
    argv = ["--stages", "--suite", str(_suite(tmp_path)), "--device", "cpu", "--stages-out", str(tmp_path / "run")]
    assert perf.main([*argv, "--prefetch", "0", "--out", str(out)]) == 0
    rows = {r["stage"]: r for r in _rows(out)}
    assert {"load", "sr", "iqa", "write", "total"} <= set(rows)
    assert rows["load"]["calls"] == rows["sr"]["calls"] == rows["write"]["calls"] == "6"  # 2 methods x 3 frames
    # per metric, inside the quality-metric stage: their calls add up to its calls, and "other" does not count
    # them twice (the top-level stages and "other" add up to the total)
    assert rows["iqa:psnr"]["calls"] == rows["iqa:sd"]["calls"] == "6" and rows["iqa"]["calls"] == "12"
    top = [r for name, r in rows.items() if ":" not in name and name != "total"]
    assert abs(sum(int(r["wall_ms"]) for r in top) - int(rows["total"]["wall_ms"])) <= len(top)
    assert abs(sum(int(r["cpu_ms"]) for r in top) - int(rows["total"]["cpu_ms"])) <= len(top)
    assert int(rows["total"]["cpu_ms"]) > 0 and all(int(r["cpu_ms"]) >= 0 for r in rows.values())


def test_prefetch_ab_runs_both_pipelines_in_child_processes(tmp_path, capsys):
    out = tmp_path / "ab.csv"
    argv = ["--stages", "--suite", str(_suite(tmp_path)), "--device", "cpu", "--prefetch-ab", "1", "--out", str(out)]
    assert perf.main(argv) == 0
    rows = _rows(out)
    assert list(rows[0]) == perf.ab_columns("prefetch")
    assert [r["prefetch"] for r in rows] == ["0", "2"] and all(r["status"] == "ok" for r in rows)
    assert all(int(r["wall_ms"]) > 0 and int(r["user_ms"]) > 0 for r in rows)
    assert "median ratio prefetch 0 / prefetch 2 over 2 runs: wall_ms" in capsys.readouterr().out


def test_stages_without_a_run_folder_leave_no_folder_behind(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    suite = _suite(tmp_path)
    assert perf.main(["--stages", "--suite", str(suite), "--device", "cpu", "--out", str(tmp_path / "s.csv")]) == 0
    assert {r["stage"] for r in _rows(tmp_path / "s.csv")} >= {"sr", "total"}
    assert not list(scratch.glob("perf_stages_*")) and not list(Path("/tmp").glob(f"perf_stages_{os.getpid()}*"))
