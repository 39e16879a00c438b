"""The run folder stays consistent: runs sharing --out add up, a report is replaced whole or not at all,
and the SR-output index survives file names with commas and newlines."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.run import main as run_main

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--tasks", "quality", "--metrics", "psnr", "--limit", "1", "--quiet", "--device", "cpu"]


def _methods(out: Path) -> list[str]:
    return sorted(pd.read_csv(out / "results.csv").method.unique())


def test_runs_sharing_out_give_the_union(tmp_path):
    out = tmp_path / "run"
    assert run_main(["--methods", "bicubic", "--out", str(out), "--no-report", *QUICK]) == 0
    assert run_main(["--methods", "nearest", "--out", str(out), "--no-report", *QUICK]) == 0
    assert _methods(out) == ["bicubic", "nearest"]
    rows = len(pd.read_csv(out / "results.csv"))
    assert run_main(["--methods", "bicubic", "--out", str(out), "--no-report", *QUICK]) == 0
    assert len(pd.read_csv(out / "results.csv")) == rows  # rerunning a job replaces its rows


@pytest.mark.slow
def test_concurrent_runs_sharing_out_give_the_union(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.run", "--methods", m, "--out", str(out), "--no-report", *QUICK],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in ("bicubic", "nearest", "lanczos")
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    assert _methods(out) == ["bicubic", "lanczos", "nearest"]


def test_a_failed_report_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    import reports.build as build
    from reports.report_table import ReportTable

    out = tmp_path / "run"
    assert run_main(["--methods", "bicubic,nearest", "--out", str(out), *QUICK]) == 0
    report = out / "report"
    before = {p.relative_to(report): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert Path("report.md") in before

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ReportTable, "write", full_disk)
    with pytest.raises(OSError):
        build.build_reports(out / "results.csv", report)
    after = {p.relative_to(report): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".report")] == []


def test_report_refuses_a_folder_that_is_not_a_report(tmp_path, capsys):
    from reports.__main__ import main

    out = tmp_path / "run"
    assert run_main(["--methods", "bicubic", "--out", str(out), "--no-report", *QUICK]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["--results", str(out / "results.csv"), "--out", str(mine)]) == 2
    assert "was not made by this tool" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_output_index_quotes_odd_ids_and_reports_stay_inside_the_run(tmp_path):
    import csv

    from benchmarks.job.files import write_output_index
    from downstream.tasks import TaskItem
    from reports.qualitative import sr_index

    out = tmp_path / "run"
    odd = "a,b\nc"
    (out / "sr").mkdir(parents=True)
    image = out / "sr" / "x.png"
    image.write_bytes(b"")
    write_output_index(out, "d", "m", [TaskItem(id=odd, image=image)])
    index = out / "sr_outputs" / "d__m.csv"
    rows = list(csv.DictReader(open(index, newline="")))
    assert [r["id"] for r in rows] == [odd] and rows[0]["path"] == "sr/x.png"
    with open(index, "a", newline="") as fh:
        csv.writer(fh).writerows([["d", "m", "evil", "/etc/passwd"], ["d", "m", "up", "../../outside.png"]])
    assert list(sr_index(out)["id"]) == [odd]
