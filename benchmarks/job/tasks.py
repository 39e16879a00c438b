"""Task evaluation of a job: each downstream task on the job's SR frames (cached per split under the task's key
and the frames' fingerprints), its bootstrap replicates (cached beside it), its per-image file and its rows."""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any

import numpy as np

from benchmarks.cache import finite_or_nan, key_of, value_key
from benchmarks.job.context import JobContext
from benchmarks.job.files import write_per_image
from benchmarks.job.frames import Frames
from downstream.evidence import Evidence, add_task_replicates, task_replicates
from sr.errors import UserError
from sr.vocab import COL_CLASS, COL_FLAGS, COL_METRIC, COL_N, COL_VALUE

log = logging.getLogger("benchmarks")


def label_fields(tasks: dict[str, Any]) -> list[str]:
    """The sample labels the built tasks read (the frame pipeline keeps those on each task item)."""
    return sorted({f for t in tasks.values() if not isinstance(t, Exception) for f in t.labels})


class TaskEvaluation:
    """The job's tasks (name -> task, or the exception building it raised) on the frames the pipeline left."""

    def __init__(self, job: JobContext, tasks: dict[str, Any], frames: Frames, evidence: Evidence):
        self.job = job
        self.tasks = tasks
        self.frames = frames
        self.evidence = evidence
        self.items_key = key_of(frames.fingerprints)
        self.draws_key = key_of(evidence.draws_identity())
        self.identities: dict[str, dict[str, Any]] = {}  # for the job's identity file
        self.specs: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        for task_name, task_config in self.job.settings.tasks.items():
            self.evaluate(task_name, task_config, self.tasks[task_name])

    def _error(self, task_name: str, metric: str, error: str) -> None:
        self.job.rows.add(task_name, metric, math.nan, flags=self.job.method.flags, error=error)

    def evaluate(self, task_name: str, task_config: str, task: Any) -> None:
        """One task's rows (or its error row), its identity and declarations."""
        job = self.job
        if isinstance(task, Exception):
            self.identities[task_name] = {"config": task_config, "error": f"{type(task).__name__}: {task}"}
            self._error(task_name, "unavailable", str(task))
            return
        self.identities[task_name] = {"config": task_config, **task.identity()}
        self.specs[task_name] = task.spec()
        if not job.at_hr_size or not task.applicable(job.dataset) or not self.frames.items:
            return
        errors = self.frames.label_errors
        if errors:
            self._error(
                task_name,
                "error",
                f"{len(errors)} frame(s) have label errors, so the task is not scored; the first: {errors[0]}",
            )
            return
        task_key = value_key(task.identity(), task.libraries)
        cached = self.entry(task_name, task, task_key)
        if cached is None:
            return
        if cached["state"] is not None:
            add_task_replicates(self.evidence, task_name, self.replicates(task, task_key, cached["state"]))
        self.add_rows(task_name, task, cached["rows"])

    def entry(self, task_name: str, task: Any, task_key: str) -> dict[str, Any] | None:
        """The task's cache entry (rows and per-image state), computed now when missing; None (and an error row)
        when the task fails."""
        job = self.job
        path = job.cache.task_path(job.method_key, job.dataset_key, task_key, self.items_key)
        cached = job.cache.read_json(path)
        if cached is not None:
            return cached
        try:
            workdir = job.settings.out / "work" / task_name / f"{job.method_key}_{job.dataset_key}"
            with job.resources.stages(task_name):
                classes = task.dataset_classes(job.dataset)
                task.check_classes(classes)
                task_rows, state = task.evaluate_with_state(self.frames.items, classes, workdir)
        except UserError as exc:  # e.g. a class mismatch: its message says what to do, no traceback
            self._error(task_name, "error", str(exc))
            return None
        except Exception as exc:
            log.error(
                "task %s on %s/%s failed:\n%s", task_name, job.dataset_name, job.method_name, traceback.format_exc()
            )
            self._error(task_name, "error", f"{type(exc).__name__}: {exc}")
            return None
        rows = [
            {COL_METRIC: r.metric, COL_CLASS: r.cls, COL_VALUE: r.value, COL_N: r.n, "image": r.image}
            | ({COL_FLAGS: list(r.flags)} if r.flags else {})
            for r in task_rows
        ]
        cached = {"rows": rows, "state": state}
        job.cache.write_json(path, cached)
        return cached

    def replicates(self, task: Any, task_key: str, state: Any) -> dict[tuple[str, str], np.ndarray]:
        """The task's bootstrap replicates on the evidence's image lists (not cheap: COCO AP per drawn list),
        cached beside its entry."""
        job = self.job
        path = job.cache.replicates_path(job.method_key, job.dataset_key, task_key, self.items_key, self.draws_key)
        stored = job.cache.read_json(path)
        if stored is not None:
            return {(metric, cls): np.asarray(v, dtype=np.float64) for metric, cls, v in stored}
        with job.resources.stages("replicates"):
            replicates = task_replicates(self.evidence, type(task), state)
        job.cache.write_json(path, [[metric, cls, v.tolist()] for (metric, cls), v in replicates.items()])
        return replicates

    def add_rows(self, task_name: str, task: Any, rows: list[dict[str, Any]]) -> None:
        """The per-image file of the task and its result rows (those without ``image``)."""
        job = self.job
        per_image = [r for r in rows if r.get("image")]
        if per_image:
            write_per_image(job.settings.out, job.files_name, job.method_name, task_name, per_image)
        for r in rows:
            if not r.get("image"):
                job.rows.add(
                    task_name,
                    r[COL_METRIC],
                    finite_or_nan(r[COL_VALUE]),
                    cls=r[COL_CLASS],
                    n=r[COL_N],
                    flags=job.method.flags + task.flags + tuple(r.get(COL_FLAGS) or ()),
                )
