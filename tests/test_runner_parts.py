"""The runner's parts, each on its own (``benchmarks.job``: context, frame pipeline, quality scoring, task
evaluation, files; ``benchmarks.resources``; ``benchmarks.stages``), and the run's object pool: every SR method and
task network built once per run, no object kept from one run to the next."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import noise_frames
from PIL import Image

import downstream.tasks
import sr.registry
from benchmarks.job.context import JobRows, JobUnavailable, Settings, open_job
from benchmarks.job.files import write_job_identity, write_per_image
from benchmarks.job.frames import FramePipeline, Frames
from benchmarks.job.quality import QualityScoring
from benchmarks.job.tasks import TaskEvaluation
from benchmarks.resources import Resources
from benchmarks.run import main as run_main
from benchmarks.stages import Stages
from downstream.evidence import Evidence
from downstream.tasks import MetricRow, ResultMetric, Task, TaskReport
from sr.errors import UnknownNameError, UserError


class BrightTask(Task):
    """Mean grey value of the SR frames, and one per-image row per frame (no model)."""

    name = "bright"
    metrics = (ResultMetric("mean", per_class=True),)
    report = TaskReport(per_class="mean", overall="mean")

    def __init__(self, shift: float = 0.0, device="cpu", weights_dir=None, random_weights=False):
        self.shift = float(shift)

    def identity(self) -> dict:
        return {"name": self.name, "shift": self.shift}

    def evaluate(self, items, class_names, workdir):
        means = [float(np.asarray(Image.open(i.image)).mean()) / 255 for i in items]
        per_image = [MetricRow("mean", m, "all", 1, image=i.id) for i, m in zip(items, means, strict=True)]
        return [MetricRow("mean", float(np.mean(means)) + self.shift, "all", len(items)), *per_image]


def _task_yaml(path: Path, shift: float = 0.0) -> Path:
    path.write_text(f"factory: test_runner_parts:BrightTask\noptions: {{shift: {shift}}}\n")
    return path


def _job(tmp_path: Path, method: str = "bicubic", frames: int = 3, **settings):
    folder = noise_frames(tmp_path / "frames", frames)
    settings = Settings(suite="s", out=tmp_path / "run", **{"progress": False, **settings})
    rows = JobRows("s", f"folder:{folder}", method)
    return open_job(rows, settings, Resources.for_settings(settings))


# ---------------------------------------------------------------------------------------------------- stages
def test_stages_count_an_outer_block_once_and_each_run_has_its_own():
    stages, other = Stages(), Stages()
    with stages("sr"), stages("sr"):
        time.sleep(0.01)
    seconds, calls = stages.totals()["sr"]
    assert calls == 1 and seconds >= 0.01 and other.totals() == {}
    assert Resources().stages.sync_cuda is False  # a run never waits on CUDA for the timer; perf --stages asks


# ------------------------------------------------------------------------------------------------- resources
def test_resources_key_objects_by_path_and_content_not_by_name(tmp_path):
    (tmp_path / "a").mkdir()
    first = _task_yaml(tmp_path / "a" / "t.yaml")
    resources = Resources()
    task = resources.task(str(first))
    assert isinstance(task, BrightTask) and resources.task(str(first)) is task
    (tmp_path / "b").mkdir()
    same_name = _task_yaml(tmp_path / "b" / "t.yaml")  # another file of the same name and content
    assert resources.task(str(same_name)) is not task
    _task_yaml(first, shift=1.0)  # edited: another object
    assert resources.task(str(first)).shift == 1.0
    assert Resources().task(str(same_name)) is not resources.task(str(same_name))  # nothing kept between runs
    assert Resources().method("bicubic") is not resources.method("bicubic")


def test_a_build_that_fails_is_kept_as_its_exception_and_tried_once(monkeypatch):
    calls = []
    build = sr.registry.load_method

    def counting(name, **kwargs):
        calls.append(name)
        return build(name, **kwargs)

    monkeypatch.setattr(sr.registry, "load_method", counting)
    resources = Resources()
    missing = resources.method("difiisr")  # its weights are not in the (empty) weights directory
    assert isinstance(missing, UserError) and "not found" in str(missing)
    assert resources.method("difiisr") is missing and calls == ["difiisr"]
    assert isinstance(resources.metric("no_such_metric"), UnknownNameError)
    assert isinstance(resources.task("no_such_task"), UnknownNameError)


def test_only_the_last_method_is_kept(monkeypatch):
    resources = Resources()
    bicubic = resources.method("bicubic")
    assert resources.method("bicubic") is bicubic
    resources.method("nearest")
    assert resources.method("bicubic") is not bicubic


def test_a_run_builds_each_method_and_task_once_and_keeps_the_row_order(tmp_path, monkeypatch):
    built: list[str] = []
    load_method, load_task = sr.registry.load_method, downstream.tasks.load_task
    monkeypatch.setattr(sr.registry, "load_method", lambda name, **kw: built.append(name) or load_method(name, **kw))
    monkeypatch.setattr(downstream.tasks, "load_task", lambda cfg, **kw: built.append("task") or load_task(cfg, **kw))
    one, two = noise_frames(tmp_path / "one", 2), noise_frames(tmp_path / "two", 2)
    argv = ["--datasets", f"folder:{one},folder:{two}", "--methods", "bicubic,nearest", "--metrics", "entropy"]
    argv += ["--tasks", f"quality,{_task_yaml(tmp_path / 't.yaml')}", "--out", str(tmp_path / "run")]
    assert run_main([*argv, "--quiet", "--no-report"]) == 0
    assert sorted(built) == ["bicubic", "nearest", "task"]
    with open(tmp_path / "run" / "results.csv", newline="") as fh:
        jobs = [(r["dataset"], r["method"]) for r in csv.DictReader(fh)]
    order = list(dict.fromkeys(jobs))  # data-set-major, as the table always was
    assert [m for _, m in order] == ["bicubic", "nearest", "bicubic", "nearest"] and order[0][0] == order[1][0]


# --------------------------------------------------------------------------------------------------- context
def test_open_job_names_what_is_unavailable(tmp_path):
    settings = Settings(suite="s", out=tmp_path / "run")
    with pytest.raises(JobUnavailable, match="nowhere"):
        open_job(JobRows("s", f"folder:{tmp_path / 'nowhere'}", "bicubic"), settings, Resources())
    noise_frames(tmp_path / "frames", 1)
    with pytest.raises(JobUnavailable, match="difiisr"):
        open_job(JobRows("s", f"folder:{tmp_path / 'frames'}", "difiisr"), settings, Resources())


def test_job_rows_carry_the_data_flags_set_after_opening(tmp_path):
    job = _job(tmp_path, frames=2, limit=5)
    job.rows.add("quality", "x", 1.0)
    assert job.ids == ["f0", "f1"] and "subset_smaller" in job.rows.rows[0]["flags"]


# ------------------------------------------------------------------------------------------- frame pipeline
class RecordingScorer:
    def __init__(self):
        self.scored, self.committed = [], []

    def score(self, sample_id, frame, image):
        self.scored.append((sample_id, tuple(image.shape)))
        return [sample_id]

    def commit(self, sample_id, scores):
        self.committed.append((sample_id, scores))


@pytest.mark.parametrize("depth", [0, 2])
def test_the_frame_pipeline_commits_in_order_and_a_bad_frame_is_one_row(tmp_path, depth):
    job = _job(tmp_path, frames=4, prefetch=depth)
    bad = job.dataset.root / "f2.png"
    bad.write_bytes(bad.read_bytes()[:50])
    scorer = RecordingScorer()
    frames = FramePipeline(job, []).run(scorer)
    assert scorer.committed == [("f0", ["f0"]), ("f1", ["f1"]), ("f3", ["f3"])]
    assert scorer.scored[0][1] == (1, 32, 40)  # the stored 8-bit output at the HR size, [C, H, W]
    assert [i.id for i in frames.items] == ["f0", "f1", "f3"] and all(i.image.is_file() for i in frames.items)
    assert [f for f, _ in frames.fingerprints] == ["f0", "f1", "f3"] and frames.label_errors == []
    (error,) = job.rows.rows
    assert error["metric"] == "error" and error["class"] == "f2" and "f2.png" in error["error"]


def test_a_second_pipeline_reads_the_cached_outputs_without_super_resolving(tmp_path):
    job = _job(tmp_path, frames=2)
    first = FramePipeline(job, []).run(RecordingScorer())
    job.method.upscale = lambda *a, **k: pytest.fail("super-resolved a cached frame")
    again = RecordingScorer()
    second = FramePipeline(job, []).run(again)
    assert second.items == first.items and [s for s, _ in again.scored] == ["f0", "f1"]


# ------------------------------------------------------------------------------------------ quality scoring
class Half:
    """A stand-in metric: the mean of the image, halved; fails on frame f1."""

    name, libraries, flags = "half", (), ("half_flag",)

    class spec:  # noqa: N801 - the attributes QualityScoring reads
        reference = False
        lr_input = False

    def identity(self):
        return {"name": self.name}

    def __call__(self, image, reference):
        if image.shape[-1] == 1:
            raise ValueError("too small")
        return image.mean(dim=(1, 2, 3)) / 2


class StubResources(Resources):
    def metric(self, name):
        return Half() if name == "half" else UnknownNameError("metric", name, ["half"])


def test_quality_scoring_caches_entries_only_when_committed_and_summarises_them(tmp_path):
    settings = Settings(suite="s", out=tmp_path / "run", metrics=("half", "broken"), progress=False)
    noise_frames(tmp_path / "frames", 2)
    job = open_job(JobRows("s", f"folder:{tmp_path / 'frames'}", "bicubic"), settings, StubResources())
    scoring = QualityScoring(job)
    frame = type("F", (), {"sample": job.dataset.load("f0"), "reference": None})()
    image = torch.full((1, 4, 4), 0.5)
    half, broken = scoring.score("f0", frame, image)
    assert (
        half.new and half.entry == {"value": 0.25} and not half.path.exists() and isinstance(broken.metric, Exception)
    )
    scoring.commit("f0", [half, broken])
    assert job.cache.read_json(half.path) == {"value": 0.25}  # through the digest check
    assert scoring.score("f0", frame, image)[0].new is False  # read back from the cache
    failed = scoring.score("f1", type("F", (), {"sample": job.dataset.load("f1"), "reference": None})(), image[..., :1])
    scoring.commit("f1", failed)
    evidence = Evidence(ids=job.ids, seed=0)
    scoring.summarise(evidence)
    rows = {(r["metric"], r["class"]): r for r in job.rows.rows}
    assert rows[("half", "f1")]["error"] == "ValueError: too small"
    assert rows[("half", "all")]["value"] == 0.25 and rows[("half", "all")]["n"] == 1
    assert rows[("half", "all")]["flags"] == "half_flag" and "broken" in rows[("broken", "all")]["error"]
    values = evidence.values[("quality", "half", "all")]
    assert values[0] == 0.25 and math.isnan(values[1])


# ------------------------------------------------------------------------------------------- task evaluation
def _frames_of(job) -> Frames:
    return FramePipeline(job, []).run(RecordingScorer())


def test_task_evaluation_caches_rows_and_writes_per_image_values(tmp_path):
    job = _job(tmp_path, frames=2, tasks={"bright": "x"})
    frames = _frames_of(job)
    means = [float(np.asarray(Image.open(i.image)).mean()) / 255 for i in frames.items]
    evaluation = TaskEvaluation(job, {"bright": BrightTask(0.5)}, frames, Evidence(ids=job.ids, seed=0))
    evaluation.run()
    (row,) = job.rows.rows
    assert row["task"] == "bright" and row["value"] == pytest.approx(np.mean(means) + 0.5) and row["n"] == 2
    assert evaluation.identities == {"bright": {"config": "x", "name": "bright", "shift": 0.5}}
    per_image = (
        job.settings.out / "per_image" / f"{job.dataset_name}__bicubic__bright.csv".replace("/", "_")
    ).read_text()
    assert per_image.count("\n") == 3 and "f1" in per_image
    again = TaskEvaluation(job, {"bright": BrightTask(0.5)}, frames, Evidence(ids=job.ids, seed=0))
    again.tasks["bright"].evaluate = lambda *a: pytest.fail("a cached task entry was recomputed")
    again.run()
    assert job.rows.rows[1]["value"] == row["value"]


def test_task_evaluation_error_rows(tmp_path):
    job = _job(tmp_path, frames=1, tasks={"bright": "x", "gone": "y"})
    frames = _frames_of(job)
    frames.label_errors.append("f0.txt:1: bad box")
    tasks = {"bright": BrightTask(), "gone": UnknownNameError("task", "y", [])}
    evaluation = TaskEvaluation(job, tasks, frames, Evidence(ids=job.ids, seed=0))
    evaluation.run()
    errors = {r["task"]: (r["metric"], r["error"]) for r in job.rows.rows}
    assert errors["bright"][0] == "error" and "1 frame(s) have label errors" in errors["bright"][1]
    assert errors["gone"][0] == "unavailable" and "error" in evaluation.identities["gone"]


# ----------------------------------------------------------------------------------------------------- files
def test_job_files(tmp_path):
    write_per_image(tmp_path, "d/x", "m", "t", [{"image": "a,b", "metric": "m1", "class": "all", "value": 1.5, "n": 1}])
    with open(tmp_path / "per_image" / "d_x__m__t.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["image"] == "a,b" and row["value"] == "1.5" and row["dataset"] == "d/x"
    write_job_identity(tmp_path, "d", "m", {"name": "m"}, {"t": {"config": "c"}}, {"t": {"labels": []}})
    ident = json.loads((tmp_path / "jobs" / "d__m.json").read_text())
    assert ident == {
        "dataset": "d",
        "method": "m",
        "name": "m",
        "tasks": {"t": {"config": "c"}},
        "task_specs": {"t": {"labels": []}},
    }
