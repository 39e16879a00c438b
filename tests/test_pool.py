"""benchmarks.pool: the main job's worker processes (--workers).

The numbers depend on torch's thread count, not on the processes: two workers of one thread each give results.csv
byte for byte as one process with one thread (and --workers 1 keeps the run's own thread count); the report's
task figures come from the workers; a worker that dies is a clear error naming the way on; auto and wrong values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pytest
import torch

import benchmarks.pool as pool
from benchmarks.run import main as run_main
from sr.errors import UserError
from sr.vocab import ENV_WORKERS

# a diffusion network, an interpolation and the LR input, both tasks and two metrics on the first four frames
JOB = ["--methods", "difiisr_demo,bicubic,lr", "--metrics", "psnr,niqe", "--limit", "4", "--quiet"]


def _run(out: Path, *extra: str) -> bytes:
    assert run_main([*JOB, "--out", str(out), *extra]) == 0
    return (out / "results.csv").read_bytes()


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_workers_give_the_numbers_of_one_process_with_their_thread_count(tmp_path, threads_restored):
    """This test process has used torch with several threads before (the suite), so the fork is the unsafe case
    for libgomp unless the workers keep to one thread each (they do: the run hangs otherwise)."""
    torch.set_num_threads(2)
    pooled = _run(tmp_path / "pooled", "--workers", "2", "--no-report")
    torch.set_num_threads(1)
    single = _run(tmp_path / "single", "--workers", "1", "--no-report")
    assert pooled == single

    meta = json.loads((tmp_path / "pooled" / "run.json").read_text())
    assert (meta["workers"], meta["torch_threads"]) == (2, 1)  # what the jobs computed with
    meta = json.loads((tmp_path / "single" / "run.json").read_text())
    assert (meta["workers"], meta["torch_threads"]) == (1, 1)  # --workers 1: the run's own thread count


def test_the_report_is_drawn_in_the_workers_with_the_same_pictures(tmp_path, monkeypatch):
    """The task figures (Figures 4/5) run in the workers, and every matplotlib figure is drawn there
    (reports.figure_files.drawn_elsewhere); the PNGs are the bytes of a report drawn in the run's process."""
    from reports.build import build_reports
    from reports.figure_files import _write_with

    sent = []
    original = pool.JobPool.submit

    def counted(self, fn, *args):
        sent.append(fn)
        return original(self, fn, *args)

    monkeypatch.setattr(pool.JobPool, "submit", counted)
    _run(tmp_path / "run", "--workers", "2")
    pooled = tmp_path / "run" / "report"
    assert sent.count(pool._task_figure) == 2  # Figures 4 (detection) and 5 (segmentation), one data set
    pngs = sorted(p.relative_to(pooled) for p in pooled.rglob("*.png"))
    # each matplotlib figure drawn once (the paper report copies the run report's pictures); Figures 4/5 and their
    # parts are the task figures'
    task_figure = [p for p in pngs if p.name.startswith(("fig4_", "fig5_")) or p.parent.name.endswith("_parts")]
    assert sent.count(_write_with) == len({p.name for p in pngs if p not in task_figure}) > 5
    here = tmp_path / "here"
    build_reports(tmp_path / "run" / "results.csv", here)  # in this process, building its own task networks
    assert pngs == sorted(p.relative_to(here) for p in here.rglob("*.png"))
    for png in pngs:
        if png not in task_figure:  # the task figures: one torch thread there, more here
            assert (pooled / png).read_bytes() == (here / png).read_bytes(), png


def _dies(group):
    os._exit(3)  # a worker killed mid-job (out of memory, a segfault in a library)


def test_a_worker_that_dies_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "_run_group", _dies)  # the forked workers inherit it
    with pytest.raises(RuntimeError, match="worker process of the run died.*rerun the same command"):
        run_main([*JOB, "--out", str(tmp_path / "run"), "--workers", "2", "--no-report", "--debug"])


def test_auto_and_explicit_worker_counts(monkeypatch):
    monkeypatch.setattr(pool, "usable_cores", lambda: 8)
    auto = pool.MAX_AUTO_WORKERS if sys.platform == "linux" else 1
    assert pool.resolve_workers(None, "cpu", 29) == auto
    assert pool.resolve_workers(None, "cpu", 3) == min(auto, 3)  # never more workers than methods
    assert pool.resolve_workers(None, "cuda", 29) == 1
    assert pool.resolve_workers(3, "cpu", 29) == 3 and pool.resolve_workers(1, "cuda", 29) == 1
    with pytest.raises(UserError, match="CPU only"):
        pool.resolve_workers(2, "cuda", 29)
    assert pool.parse_workers("auto") is None and pool.parse_workers("3") == 3
    for wrong in ("0", "-1", "two", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
            pool.parse_workers(wrong)
    monkeypatch.delenv(ENV_WORKERS, raising=False)
    assert pool.default_workers() == "auto"
    monkeypatch.setenv(ENV_WORKERS, "0")
    assert run_main(["--out", "/nonexistent/never", "--quiet"]) == 2  # a usage error, before anything is made


def test_figures_drawn_elsewhere_are_the_same_files_and_a_failure_is_raised(tmp_path):
    from concurrent.futures import Future, ThreadPoolExecutor

    import matplotlib
    import matplotlib.pyplot as plt

    from reports.figure_files import drawn_elsewhere, save_figure

    def figure():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], [2, 0, 1], label="a <b> & c")
        ax.legend()
        return fig

    here = save_figure(figure(), tmp_path / "here" / "f", dpi=80)
    with ThreadPoolExecutor(1) as executor:
        with drawn_elsewhere(executor.submit):
            there = save_figure(figure(), tmp_path / "there" / "f", dpi=80)
        assert here[0].read_bytes() == there[0].read_bytes()

        def failing(fn, *args):  # the worker's disk is full
            return executor.submit(_disk_full)

        with pytest.raises(OSError, match="No space left"):
            with drawn_elsewhere(failing):
                save_figure(figure(), tmp_path / "full" / "f", dpi=80)

    def with_defaults(fn, *args):  # another process: matplotlib's defaults there, not this one's rcParams
        future = Future()
        with matplotlib.rc_context():
            matplotlib.rcdefaults()
            future.set_result(fn(*args))
        return future

    with plt.rc_context({"svg.fonttype": "none"}):  # as reports.significance_figure saves: SVG text stays text
        with drawn_elsewhere(with_defaults):
            there = save_figure(figure(), tmp_path / "text" / "f", dpi=80)
    assert "a &lt;b&gt; &amp; c</text>" in there[1].read_text(encoding="utf-8")


def _disk_full():
    raise OSError(28, "No space left on device")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # the field after the state: the parent's pid
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with the run on Linux (prctl)")
def test_a_killed_run_leaves_no_worker_behind(tmp_path):
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != ENV_WORKERS}
    cmd = [sys.executable, "-m", "benchmarks.run", *JOB, "--workers", "2", "--no-report", "--out", str(out)]
    run = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "cache").rglob("*.png")):  # the workers are at work
        time.sleep(0.05)
    workers = _children(run.pid)
    assert len(workers) >= 2, workers
    os.kill(run.pid, signal.SIGKILL)  # the run's process only, not its process group
    run.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_a_run_report_figure_that_fails_in_a_worker_fails_the_report(tmp_path, demo_run):
    """Not swallowed by the paper report (which only warns when it fails): the run report waits for its own figures
    before the paper report starts, and the report folder is left as it was."""
    from concurrent.futures import Future

    from reports.build import build_reports

    def failing_radars(fn, *args):  # a worker that cannot write one figure, the detection radar (disk full)
        future = Future()
        if any(path.name.startswith("radar_detection") for path in args[2]):
            future.set_exception(OSError(28, "No space left on device"))
        else:
            future.set_result(fn(*args))
        return future

    out = tmp_path / "report"
    with pytest.raises(OSError, match="No space left"):
        build_reports(demo_run / "results.csv", out, draw_in=failing_radars)
    assert not out.exists()
