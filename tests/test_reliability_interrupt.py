"""Kill -9 the runner at random points several times (every cache entry is complete
or absent, the rerun completes and equals an uninterrupted run), two runners on one output directory at once,
and determinism (same seed -> identical SR PNG bytes and result rows).

The trainer part of 9.5 is in ``test_reliability_trainer.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from benchmarks.cache import RunCache

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "--methods",
    "bicubic,lanczos",
    "--tasks",
    "quality",
    "--metrics",
    "psnr,ssim",
    "--limit",
    "6",
    "--quiet",
    "--no-report",
    "--seed",
    "3",
]
KILLS = 5


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", "--out", str(out), *ARGS],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


def _results(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    return df.sort_values(["dataset", "method", "task", "metric", "class"]).reset_index(drop=True)


def _check_cache_entries(out: Path) -> int:
    """Every visible cache file is complete: PNGs decode, JSONs parse. Returns how many were checked."""
    n = 0
    for path in (out / "cache").rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue  # hidden .name.XXXX.tmp files are the atomic writer's in-flight temporaries
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".png":
            with Image.open(path) as img:
                img.load()
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".gz":
            assert RunCache.read_json(path) is not None, path
        n += 1
    for name in ("results.csv", "run.json"):
        if (out / name).exists():
            (pd.read_csv if name.endswith(".csv") else lambda p: json.loads(Path(p).read_text()))(out / name)
    return n


def _sr_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "cache" / "sr").rglob("*.png"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    _finish(_start(out))
    return out


@pytest.mark.slow
def test_random_kills_leave_complete_entries_and_the_rerun_equals_an_uninterrupted_run(reference, tmp_path):
    out = tmp_path / "killed"
    rng = random.Random(20250901)
    survived, entries_seen = 0, []
    for _ in range(KILLS):
        proc = _start(out)
        have = len(list((out / "cache").rglob("*.png"))) if (out / "cache").exists() else 0
        target = have + rng.randint(1, 3)  # kill after a seeded random amount of new work
        deadline = time.time() + 300
        while (
            proc.poll() is None
            and time.time() < deadline
            and (not (out / "cache").exists() or len(list((out / "cache").rglob("*.png"))) < target)
        ):
            time.sleep(rng.uniform(0.01, 0.2))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        entries_seen.append(_check_cache_entries(out))
        survived += 1
    _finish(_start(out))
    _check_cache_entries(out)
    pd.testing.assert_frame_equal(_results(out), _results(reference))
    assert _sr_bytes(out) == _sr_bytes(reference)
    print(f"kills survived: {survived}; complete cache entries after each kill: {entries_seen}")
    assert survived == KILLS


def test_two_concurrent_runners_on_one_directory(reference, tmp_path):
    out = tmp_path / "shared"
    first, second = _start(out), _start(out)
    _finish(first)
    _finish(second)
    _check_cache_entries(out)
    pd.testing.assert_frame_equal(_results(out), _results(reference))
    assert _sr_bytes(out) == _sr_bytes(reference)
    assert not [p for p in (out / "cache").rglob(".*.tmp")], "temporaries left behind"


def test_same_seed_gives_identical_outputs_and_rows(reference, tmp_path):
    """Determinism on CPU: a second independent run (in process) gives identical SR PNG bytes and rows.

    On GPUs, cuDNN/cuBLAS kernels may choose non-deterministic algorithms, so SR outputs of network methods
    can differ in the last bits between runs (and 8-bit PNGs by 1 level at rounding ties): equal only
    approximately there (see the reliability README section)."""
    from benchmarks.run import main as run_main

    out = tmp_path / "again"
    assert run_main(["--out", str(out), *ARGS]) == 0
    assert _sr_bytes(out) == _sr_bytes(reference)
    pd.testing.assert_frame_equal(_results(out), _results(reference))
