"""The files a job leaves in the run folder besides the cache: where its SR frames are, its identity, and each
task's per-image values. Names are ``<data set>__<method>[__<task>]`` with ``/`` replaced; every file is
written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from downstream.tasks import TaskItem
from sr.atomic import atomic_write_text
from sr.vocab import COL_CLASS, COL_DATASET, COL_METHOD, COL_METRIC, COL_N, COL_TASK, COL_VALUE


def _name(*parts: str, suffix: str) -> str:
    return f"{'__'.join(parts)}{suffix}".replace("/", "_")


def write_output_index(out: Path, dataset_name: str, method_name: str, items: list[TaskItem]) -> None:
    """``<out>/sr_outputs/<data set>__<method>.csv``: where each SR frame of the job is (for figures); paths are
    relative to the run folder, fields quoted by the csv module (ids may hold commas or newlines)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([COL_DATASET, COL_METHOD, "id", "path"])
    writer.writerows([dataset_name, method_name, item.id, item.image.relative_to(out).as_posix()] for item in items)
    atomic_write_text(out / "sr_outputs" / _name(dataset_name, method_name, suffix=".csv"), buf.getvalue())


def write_job_identity(
    out: Path,
    dataset_name: str,
    method_name: str,
    identity: dict[str, Any],
    tasks: dict[str, dict[str, Any]],
    task_specs: dict[str, dict[str, Any]],
) -> None:
    """``<out>/jobs/<data set>__<method>.json``: the method's identity (name, options, weights sha256, flags),
    the identity of each task the job used (config, settings, weights sha256, or the error that building it
    raised) and each task's declarations (``Task.spec``: labels, metrics, report); ``benchmarks.run.write_results``
    merges these into run.json (for the report)."""
    atomic_write_text(
        out / "jobs" / _name(dataset_name, method_name, suffix=".json"),
        json.dumps(
            {"dataset": dataset_name, "method": method_name, **identity, "tasks": tasks, "task_specs": task_specs},
            indent=2,
            default=str,
        )
        + "\n",
    )


def write_per_image(out: Path, dataset_name: str, method_name: str, task_name: str, rows: list[dict[str, Any]]) -> None:
    """``<out>/per_image/<data set>__<method>__<task>.csv``: a task's per-image values (rows with ``image``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([COL_DATASET, COL_METHOD, COL_TASK, "image", COL_METRIC, COL_CLASS, COL_VALUE, COL_N])
    for r in rows:
        writer.writerow(
            [dataset_name, method_name, task_name, r["image"], r[COL_METRIC], r[COL_CLASS], r[COL_VALUE], r[COL_N]]
        )
    atomic_write_text(out / "per_image" / _name(dataset_name, method_name, task_name, suffix=".csv"), buffer.getvalue())
