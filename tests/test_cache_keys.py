"""The run cache recomputes exactly what a change touches: a library version, the project's version or the cache
schema, an option, a weights file, a data file.

Two methods (one with a weights file and an option, one without), two quality metrics and one task plugin run on
three frames; after each change the cache files written anew are compared with what depends on the change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import cache as cache_module
from benchmarks.run import main as run_main
from downstream.tasks import MetricRow, ResultMetric, Task, TaskReport
from sr.base import SRMethod
from sr.registry import METHODS


class GainResize(SRMethod):
    """Nearest upscaling times a gain read from a weights file (so a weights file changes the output)."""

    has_weights = True

    def __init__(self, name: str, scale: int, *, weights: str, offset: float = 0.0, **common):
        super().__init__(name, scale, **common)
        self.path, self.offset = Path(weights), float(offset)
        self.options = {"weights": weights, "offset": self.offset}

    def weight_files(self) -> dict[str, Path]:
        return {"gain": self.path}

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        gain = float(self.path.read_text())
        return torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest") * gain + self.offset


class MeanTask(Task):
    """A task computed "by ultralytics" (as the detection task is): the mean grey value of the outputs."""

    name = "meantask"
    metrics = (ResultMetric("mean", per_class=True),)
    report = TaskReport(per_class="mean", overall="mean")
    libraries = ("ultralytics", "torch")

    def __init__(
        self, shift: float = 0.0, device: str = "cpu", weights_dir: str | None = None, random_weights: bool = False
    ):
        self.shift = float(shift)

    def identity(self) -> dict:
        return {"name": self.name, "shift": self.shift}

    def evaluate(self, items, class_names, workdir):
        means = [float(np.asarray(Image.open(i.image)).mean()) / 255 for i in items]
        return [MetricRow("mean", float(np.mean(means)) + self.shift, "all", len(items))]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Three frames, a weights file, and method 'gain' registered from tmp_path/gain.yaml."""
    names, path = METHODS.names, METHODS.path
    monkeypatch.setattr(METHODS, "names", lambda: [*names(), "gain"])
    monkeypatch.setattr(METHODS, "path", lambda name: tmp_path / "gain.yaml" if name == "gain" else path(name))
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 200, (32, 40), dtype=np.uint8)).save(frames / f"f{i}.png")
    (tmp_path / "gain.txt").write_text("1.0")
    (tmp_path / "data.yaml").write_text(f"kind: folder\nroot: {frames}\n")
    return tmp_path


def _method_yaml(root: Path, offset: float) -> Path:
    path = root / "gain.yaml"
    path.write_text(
        f"name: gain\nfactory: test_cache_keys:GainResize\nscale: 4\n"
        f"options: {{weights: {root / 'gain.txt'}, offset: {offset}}}\n"
    )
    return path


def _task_yaml(root: Path, shift: float) -> Path:
    path = root / "meantask.yaml"
    path.write_text(f"factory: test_cache_keys:MeanTask\noptions: {{shift: {shift}}}\n")
    return path


def _run(root: Path, offset: float = 0.0, shift: float = 0.0) -> dict[str, int]:
    """Run in this process (each run builds its own objects: the edited YAMLs are read again), then return every
    cache file (relative path) -> mtime_ns."""
    out = root / "run"
    _method_yaml(root, offset)
    argv = [
        "--datasets",
        str(root / "data.yaml"),
        "--methods",
        "gain,bicubic",
        "--metrics",
        "psnr,ssim",
        "--tasks",
        f"quality,{_task_yaml(root, shift)}",
        "--out",
        str(out),
        "--quiet",
        "--no-report",
    ]
    assert run_main(argv) == 0
    return {
        p.relative_to(out / "cache").as_posix(): p.stat().st_mtime_ns
        for p in (out / "cache").rglob("*")
        if p.is_file() and p.suffix in (".png", ".json", ".gz") and not p.name.endswith(".png.json")
    }  # an SR PNG's digest entry (.png.json) is written with its PNG: the PNG stands for both


def _recomputed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {p for p, t in after.items() if before.get(p) != t}


def _kind(paths: set[str]) -> set[str]:
    """{'sr', 'quality', 'task'} parts of the recomputed files."""
    return {p.split("/")[0] for p in paths}


def _bump(monkeypatch, distribution: str):
    real = cache_module.library_version
    monkeypatch.setattr(cache_module, "library_version", lambda d: "999.0" if d == distribution else real(d))


def test_each_change_recomputes_exactly_what_depends_on_it(setup, monkeypatch):
    first = _run(setup)
    n_sr = sum(p.startswith("sr/") for p in first)
    assert n_sr == 6 and sum(p.startswith("task/") for p in first) == 2  # 2 methods x 3 frames; 1 task x 2
    assert _recomputed(first, _run(setup)) == set()  # nothing changed: nothing recomputed

    # a library: only the values it computes
    for distribution, kinds in (
        ("pyiqa", {"quality"}),
        ("ultralytics", {"task"}),
        ("torch", {"sr", "quality", "task"}),
        ("irsr-bench", {"sr", "quality", "task"}),
    ):
        state = _run(setup)
        with monkeypatch.context() as m:
            _bump(m, distribution)
            before = _run(setup)  # first run under the bumped version computes ...
            changed = _recomputed(state, before)
            assert _kind(changed) == kinds, distribution
            assert _recomputed(before, _run(setup)) == set()  # ... and a second one reuses it
        if "sr" in kinds:  # all of it: every SR output, quality value and task row
            assert len(changed) == len(first), distribution
    state = _run(setup)
    with monkeypatch.context() as m:  # the cache schema version
        m.setattr(cache_module, "CACHE_SCHEMA", cache_module.CACHE_SCHEMA + 1)
        assert len(_recomputed(state, _run(setup))) == len(first)

    base = _run(setup)

    # a task option: only the task rows
    changed = _recomputed(base, _run(setup, shift=0.5))
    assert _kind(changed) == {"task"} and len(changed) == 2

    # a method option, then its weights file: only that method's SR outputs, quality values and task rows
    for change in ("option", "weights"):
        state = _run(setup)
        if change == "weights":
            (setup / "gain.txt").write_text("0.5")
        changed = _recomputed(state, _run(setup, offset=0.1 if change == "option" else 0.0))
        assert _kind(changed) == {"sr", "quality", "task"}, change
        method_keys = {p.split("/")[1] for p in changed}
        assert len(method_keys) == 1, change  # the other method (bicubic) is untouched
        assert sum(p.startswith("sr/") for p in changed) == 3 and sum(p.startswith("task/") for p in changed) == 1

    # a data file: only that frame's SR outputs and quality values, and the task rows over the split
    state = _run(setup)
    frame = setup / "frames" / "f1.png"
    Image.fromarray(np.full((32, 40), 99, np.uint8)).save(frame)
    changed = _recomputed(state, _run(setup))
    assert {p for p in changed if p.startswith(("sr/", "quality/"))} == {
        p for p in changed if p.startswith(("sr/", "quality/")) and "/f1__" in p
    }
    assert sum(p.startswith("sr/") for p in changed) == 2 and sum(p.startswith("quality/") for p in changed) == 4
    assert sum(p.startswith("task/") for p in changed) == 2
