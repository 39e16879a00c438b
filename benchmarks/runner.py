"""One benchmark job = one (data set, method, degradation): super-resolve, score, run the tasks.

``run_job`` is what every executor calls (in process, or on a Ray worker); it returns result rows and leaves every
SR output and metric value in the run cache, so a rerun recomputes only what is missing. Failures are rows, not
exceptions: a method that cannot be built (missing weights), a sample that cannot be read, a metric without its
weights each become a row with the error text and the run goes on.

It composes the parts in ``benchmarks.job`` (context, frame pipeline, quality scoring, task evaluation, the job's
files) with the run's objects from ``benchmarks.resources.Resources``.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.job.context import JobRows, JobUnavailable, Settings, open_job
from benchmarks.job.files import write_job_identity, write_output_index
from benchmarks.job.frames import FramePipeline
from benchmarks.job.quality import QualityScoring
from benchmarks.job.tasks import TaskEvaluation, label_fields
from benchmarks.resources import Resources
from downstream.evidence import Evidence, attach_intervals, dataset_seed, evidence_path, write_evidence
from downstream.lr_consistency import flag_lr_inconsistent
from sr.vocab import DEGRADATION_DEFAULT


def run_job(
    dataset_name: str,
    method_name: str,
    settings: Settings,
    resources: Resources,
    degradation: str = DEGRADATION_DEFAULT,
) -> list[dict[str, Any]]:
    """Run one (data set, method) job with the data set's LR made by ``degradation`` (downstream.degradations) and
    the run's ``resources``; returns its result rows (see sr.vocab.RESULT_COLUMNS)."""
    rows = JobRows(settings.suite, dataset_name, method_name, degradation)
    try:
        job = open_job(rows, settings, resources)
    except JobUnavailable as exc:
        rows.add("sr", "unavailable", math.nan, error=str(exc))
        return rows.rows
    tasks = {task_name: resources.task(config) for task_name, config in settings.tasks.items()}
    quality = QualityScoring(job)
    frames = FramePipeline(job, label_fields(tasks)).run(quality)
    evidence = Evidence(ids=list(job.ids), seed=dataset_seed(settings.seed, dataset_name))
    quality.summarise(evidence)
    write_output_index(settings.out, rows.files_name, method_name, frames.items)
    evaluation = TaskEvaluation(job, tasks, frames, evidence)
    evaluation.run()
    write_job_identity(
        settings.out, rows.files_name, method_name, job.identity, evaluation.identities, evaluation.specs
    )
    write_evidence(evidence_path(settings.out, rows.files_name, method_name), evidence)
    attach_intervals(rows.rows, evidence)
    return flag_lr_inconsistent(rows.rows)
