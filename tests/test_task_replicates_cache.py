"""A task's bootstrap replicates are cached beside its entry: a rerun does not recompute them and gives the same
intervals; another seed or resample count recomputes them. Task entries are stored gzip-compressed, exactly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import noise_frames

import downstream.evidence as evidence
from benchmarks.cache import RunCache
from benchmarks.run import main as run_main
from downstream.evidence import evidence_path, read_evidence
from downstream.imageio import read_image
from downstream.tasks import MetricRow, ResultMetric, Task, TaskItem

CALLS: list[int] = []  # one entry (the number of drawn lists) per call of ToyMean.replicates


class ToyMean(Task):
    """Mean SR intensity over the images; its replicates are the mean over each drawn list (counted)."""

    name = "toy_mean"
    metrics = (ResultMetric("mean", higher_better=True),)

    def __init__(self, *, device: str = "cpu", weights_dir: str | None = None, random_weights: bool = False):
        pass

    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        return self.evaluate_with_state(items, class_names, workdir)[0]

    def evaluate_with_state(self, items, class_names, workdir) -> tuple[list[MetricRow], dict[str, Any]]:
        values = {item.id: float(read_image(item.image).mean()) for item in items}
        return [MetricRow("mean", float(np.mean(list(values.values()))), n=len(items))], {"values": values}

    @classmethod
    def replicates(cls, state: dict[str, Any], draws: Any) -> dict[tuple[str, str], Any]:
        CALLS.append(len(draws))
        values = state["values"]
        return {("mean", "all"): np.array([np.mean([values[i] for i in draw if i in values]) for draw in draws])}


@pytest.fixture
def toy(tmp_path):
    frames = noise_frames(tmp_path / "frames", 7, 24, 32)
    task = tmp_path / "toy_mean.yaml"
    task.write_text(f"description: toy task\nfactory: {__name__}:ToyMean\noptions: {{}}\n")
    CALLS.clear()

    def run(out: str, *extra: str) -> bytes:
        args = ["--datasets", f"folder:{frames}", "--methods", "bicubic", "--tasks", str(task), "--quiet"]
        assert run_main([*args, "--no-report", "--out", str(tmp_path / out), *extra]) == 0
        return (tmp_path / out / "results.csv").read_bytes()

    return run, tmp_path


def _replicates(out: Path) -> np.ndarray:
    dataset = f"folder:{out.parent / 'frames'}"
    return read_evidence(evidence_path(out, dataset, "bicubic")).replicates[("toy_mean", "mean", "all")]


def test_a_rerun_reuses_the_cached_replicates_and_gives_identical_intervals(toy):
    run, root = toy
    first = run("run")
    assert CALLS == [evidence.N_RESAMPLES]
    reps = _replicates(root / "run")
    assert reps.shape == (evidence.N_RESAMPLES,) and np.isfinite(reps).all()
    assert run("run") == first and CALLS == [evidence.N_RESAMPLES]  # no second call, same rows and intervals
    assert np.array_equal(_replicates(root / "run"), reps)


def test_another_seed_or_resample_count_recomputes_the_replicates(toy, monkeypatch):
    run, root = toy
    run("run")
    run("run", "--seed", "1")
    assert len(CALLS) == 2
    monkeypatch.setattr(evidence, "N_RESAMPLES", 50)
    run("run", "--seed", "1")
    assert CALLS[-1] == 50 and len(CALLS) == 3 and _replicates(root / "run").shape == (50,)


def test_compressed_entries_hold_every_value_exactly(tmp_path):
    cache = RunCache(tmp_path)
    rng = np.random.default_rng(3)
    data = {"state": {"pred": (rng.random((50, 6)) * 640).tolist(), "x": [float("nan"), 1e-300, 0.1 + 0.2]}}
    path = cache.task_path("m", "d", "t", "i")
    cache.write_json(path, data)
    assert path.name.endswith(".json.gz") and gzip.decompress(path.read_bytes()).startswith(b"{")
    back = cache.read_json(path)
    assert json.dumps(back, allow_nan=True) == json.dumps(data, sort_keys=True, allow_nan=True)
    assert back["state"]["pred"] == data["state"]["pred"] and back["state"]["x"][2] == 0.1 + 0.2
    path.write_bytes(path.read_bytes()[:20])  # truncated: absent, recomputed
    assert cache.read_json(path) is None
