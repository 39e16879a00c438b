"""SIGKILL ``python -m sr.train`` at seeded random points, several times in a row.

After every kill each file under a final name in the output directory is complete (``ckpt/last.pt`` and
``*.safetensors`` load through :func:`sr.checkpoint.load_checkpoint`, ``config.yaml`` parses); only the
atomic writer's hidden ``.<name>.XXXX.tmp`` temporaries may be partial. ``--resume`` then finishes the run,
and the final weights, EMA, optimiser state, RNG state, validation numbers and ``log.csv`` (less its
wall-clock rows) equal an uninterrupted run's bit for bit; no temporary is left.

The config is derived from ``configs/train/resshift_demo.yaml`` (``base:`` the shipped file): two cached
frames, 64-pixel crops, batch 2, a checkpoint every 3 steps, one thread, no TensorBoard.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from sr.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS = 45
SAVE_EVERY = 3
KILLS = 5  # 1 during start-up (imports, data), the others at random training steps
SEED = 20250309
FINAL = {"config.yaml", "log.csv", "ckpt/last.pt", "ema.safetensors", "model.safetensors", ".irsr-owned.json"}


def _config(tmp_path: Path) -> Path:
    cfg = {
        "base": str(ROOT / "configs" / "train" / "resshift_demo.yaml"),
        "name": "resshift_kill",
        "out_dir": str(tmp_path / "unused"),
        "data": {"max_images": 2, "val_images": 1, "patch_size": 64, "batch_size": 2},
        "train": {
            "iterations": ITERATIONS,
            "save_every": SAVE_EVERY,
            "log_every": 1,
            "val_every": 0,
            "threads": 1,
            "progress": False,
            "tensorboard": False,
        },
    }
    path = tmp_path / "resshift_kill.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sr.train",
            "--config",
            str(config),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--resume",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _logged_step(out: Path) -> int:
    """Last training step in log.csv (0 when absent; a half-written last line is ignored)."""
    try:
        text = (out / "log.csv").read_text()
    except FileNotFoundError:
        return 0
    step = 0
    for row in csv.reader(io.StringIO(text)):
        if len(row) == 4 and row[0].isdigit():
            step = max(step, int(row[0]))
    return step


def _log_rows(out: Path) -> list[list[str]]:
    """log.csv without the wall-clock rows (``sec``), which differ between any two runs."""
    return [row for row in csv.reader(io.StringIO((out / "log.csv").read_text())) if row[2] != "sec"]


def _check_files(out: Path) -> int:
    """Every file under a final name is complete; returns the step of ckpt/last.pt (0 if absent)."""
    step = 0
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out).as_posix()
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # the atomic writer's temporary of a write the kill interrupted
        assert rel in FINAL, f"unexpected file {rel}"
        if rel == "ckpt/last.pt":
            state = load_checkpoint(path)
            assert {"model", "ema", "optimizer", "step", "rng"} <= set(state)
            step = int(state["step"])
            assert 0 < step <= ITERATIONS and (step % SAVE_EVERY == 0 or step == ITERATIONS), step
            assert state["model"].keys() == state["ema"].keys()
        elif rel.endswith(".safetensors"):
            sd = load_checkpoint(path)
            assert sd and all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
        elif rel == "config.yaml":
            assert yaml.safe_load(path.read_text())["name"] == "resshift_kill"
    return step


def _states_equal(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _states_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _states_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_trainer_survives_repeated_sigkill_and_resumes_bit_for_bit(tmp_path):
    config = _config(tmp_path)
    ref_out, out = tmp_path / "uninterrupted", tmp_path / "killed"
    t0 = time.monotonic()
    ref = _finish(_start(config, ref_out))
    assert ref["step"] == ITERATIONS
    ref_wall = time.monotonic() - t0

    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(2, ITERATIONS - 3), KILLS - 1))
    kills, ckpt_steps, finished_early = 0, [], False
    for attempt in range(KILLS):
        before = _check_files(out) if out.exists() else 0
        proc = _start(config, out)
        if attempt == 0:  # somewhere in start-up: imports, data rendering, model build
            time.sleep(rng.uniform(0.2, 0.6) * ref_wall * 0.5)
        else:  # a random training step after the last checkpoint, plus a random fraction of a step
            target = min(max(targets[attempt - 1], _logged_step(out) + 1), ITERATIONS - 2)
            deadline = time.monotonic() + 300
            while proc.poll() is None and _logged_step(out) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is not None:  # it finished (or failed) before the kill: the loop has nothing left to do
            _finish(proc)
            finished_early = True
            break
        _kill(proc)
        kills += 1
        step = _check_files(out)
        assert step >= before, f"checkpoint went back from step {before} to {step}"
        ckpt_steps.append(step)
        assert not (out / "ema.safetensors").exists() or step == ITERATIONS
    temporaries = sorted(p.name for p in out.rglob(".*.tmp"))  # writes the kills interrupted
    print(
        f"SIGKILLs survived: {kills}; checkpoint step after each: {ckpt_steps}; "
        f"interrupted-write temporaries left: {temporaries}"
    )
    assert kills >= 4 and not finished_early, (kills, ckpt_steps)

    resumed = _finish(_start(config, out))
    assert resumed["step"] == ITERATIONS
    assert resumed["val"] == ref["val"] and resumed["flags"] == ref["flags"]
    _check_files(out)
    assert not list(out.rglob(".*.tmp")), "the resumed run deletes the interrupted writes' temporaries"
    assert _log_rows(out) == _log_rows(ref_out), "log.csv after the kills differs from the uninterrupted run's"
    for fname in ("model.safetensors", "ema.safetensors"):
        _states_equal(load_checkpoint(ref_out / fname), load_checkpoint(out / fname), fname)
    a, b = load_checkpoint(ref_out / "ckpt" / "last.pt"), load_checkpoint(out / "ckpt" / "last.pt")
    for key in ("model", "ema", "optimizer", "step", "rng", "scaler"):
        _states_equal(a[key], b[key], f"last.pt:{key}")
