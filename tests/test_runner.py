"""The benchmark runner end to end: results table, resumability after a kill, per-image errors, CLI."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from conftest import noise_frames

from benchmarks.cache import sr_entry_path
from benchmarks.run import main as run_main

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--tasks", "quality", "--metrics", "psnr,ssim", "--quiet", "--no-report"]


def _results(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    return df.sort_values(["dataset", "method", "task", "metric", "class"]).reset_index(drop=True)


def test_run_writes_long_format_results_and_report(tmp_path):
    out = tmp_path / "run"
    assert (
        run_main(
            [
                "--methods",
                "bicubic,hr",
                "--tasks",
                "quality",
                "--metrics",
                "psnr,ssim",
                "--limit",
                "2",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    df = _results(out)
    assert list(df.columns) == [
        "suite",
        "dataset",
        "degradation",
        "method",
        "task",
        "metric",
        "class",
        "value",
        "n",
        "ci_low",
        "ci_high",
        "flags",
        "error",
    ]
    psnr = df[(df.metric == "psnr")].set_index("method")["value"]
    assert psnr["hr"] > psnr["bicubic"] > 20
    assert (df.n == 2).all()
    assert (out / "report" / "report.md").is_file() and (out / "report" / "quality.tex").is_file()


def _runner(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--methods",
        "bicubic,lanczos,nearest",
        "--out",
        str(out),
        *QUICK,
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def test_killed_run_resumes_computing_only_what_is_missing(tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    assert _runner(reference).wait(timeout=600) == 0
    total = len(list((reference / "cache" / "sr").rglob("*.png")))
    assert total == 3 * 12

    proc = _runner(interrupted)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((interrupted / "cache" / "sr").rglob("*.png"))) < total // 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p: p.stat().st_mtime_ns for p in (interrupted / "cache").rglob("*") if p.is_file()}
    assert 0 < len([p for p in done_before if p.suffix == ".png"]) < total, "kill landed outside the run"
    assert not any(p.name.endswith(".tmp") for p in done_before if p.suffix == ".png")

    assert _runner(interrupted).wait(timeout=600) == 0
    # an SR PNG is written, then its digest entry: one the kill left without its entry is recomputed by design
    # (RunCache.read_sr), so only PNGs with their entry were finished before the kill
    finished = {p for p in done_before if p.suffix != ".png" or sr_entry_path(p) in done_before}
    for path, mtime in done_before.items():
        if path in finished and path.suffix in (".png", ".json") and not path.name.startswith("."):
            assert path.stat().st_mtime_ns == mtime, f"{path} was recomputed"
    assert len(list((interrupted / "cache" / "sr").rglob("*.png"))) == total
    pd.testing.assert_frame_equal(_results(interrupted), _results(reference))


def test_corrupt_image_is_a_result_row_and_the_rest_is_processed(tmp_path):
    frames = noise_frames(tmp_path / "frames", 3)
    (frames / "f1.png").write_bytes((frames / "f1.png").read_bytes()[:50])  # truncated
    out = tmp_path / "run"
    assert run_main(["--datasets", f"folder:{frames}", "--methods", "bicubic", "--out", str(out), *QUICK]) == 0
    df = _results(out)
    err = df[df.metric == "error"]
    assert list(err["class"]) == ["f1"] and "f1.png" in err.error.iloc[0]
    assert (df[df.metric == "psnr"].n == 2).all()


def test_user_mistakes_are_one_line_errors(capsys):
    assert run_main(["--methods", "bicubc", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown method 'bicubc'") and "Did you mean 'bicubic'" in err
    assert "\n" not in err
    assert run_main(["--suite", "nope"]) == 2
    assert run_main(["--tasks", "quality,colour"]) == 2


def test_help_documents_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for option in (
        "--methods",
        "--suite",
        "--datasets",
        "--tasks",
        "--metrics",
        "--out",
        "--device",
        "--weights-dir",
        "--limit",
        "--seed",
        "--random-weights",
        "--workers",
        "--executor",
        "--reference",
        "--prefetch",
        "--degradations",
        "--efficiency",
    ):  # README's list
        assert option in out


def test_stale_temporaries_of_killed_writes_are_swept(tmp_path):
    from benchmarks.cache import RunCache

    entry = tmp_path / "cache" / "sr" / "m" / "d"
    entry.mkdir(parents=True)
    stale, fresh = entry / ".a.png.x1.tmp", entry / ".b.png.x2.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"in progress")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert RunCache(tmp_path / "cache").sweep_stale_temporaries() == 1
    assert not stale.exists() and fresh.exists()
