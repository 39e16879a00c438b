"""What the report shows of each downstream task, from the task's own declarations.

The runner records every task's ``Task.spec()`` (labels, metrics, report) in ``run.json["task_specs"]``; a
results.csv without them (an older run, a hand-made table) falls back to what its rows show: the first metric
with per-class rows is the per-class metric, its "all" row the overall one. Nothing here names a task.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from downstream.tasks import ResultMetric, TaskReport, task_report
from sr.vocab import CLASS_ALL, COL_CLASS, COL_ERROR, COL_METRIC, COL_TASK, COL_VALUE


def task_reports(
    df: pd.DataFrame, meta: dict[str, Any] | None
) -> dict[str, tuple[TaskReport, dict[str, ResultMetric]]]:
    """task -> (its report declaration, metric name -> its declaration) for every task with per-class values."""
    specs = (meta or {}).get("task_specs") or {}
    ok = df[df[COL_VALUE].notna() & (df[COL_ERROR].astype(str) == "")]
    out = {}
    for task in dict.fromkeys(ok[COL_TASK].astype(str)):
        metrics, report = task_report(specs.get(task))
        if report is None:
            rows = ok[ok[COL_TASK] == task]
            per_class = rows[rows[COL_CLASS] != CLASS_ALL][COL_METRIC]
            if per_class.empty:
                continue
            metric = str(per_class.iloc[0])
            has_all = ((rows[COL_METRIC] == metric) & (rows[COL_CLASS] == CLASS_ALL)).any()
            report = TaskReport(per_class=metric, overall=metric if has_all else "")
        out[task] = (report, {m.name: m for m in metrics})
    return out
