"""The run's own tables (``run_tables``: quality, per-class task metrics with 95 % intervals and significance-gated
best / second-best marks, significance, problems), built once for report.md and report.html, and the
no-reference radar plots.

A cell reads ``value [ci_low, ci_high]``. In each column the best method is bold and the second best
italic, but only where its paired difference to the next-ranked method is significant
(``reports.significance.ranked_marks``); reference rows (the ``hr`` / ``lr`` family "reference") and rows made
with random weights are not ranked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from downstream.tasks import ResultMetric
from reports.escape import file_stem, md_code, md_text
from reports.radar import normalised_for_radar, radar_plot
from reports.report_table import ReportTable
from reports.significance import RunEvidence, ranked_marks
from reports.tables import (
    flags_in,
    method_flags,
    per_class_table,
    problems_table,
    quality_table,
    table_notes,
    unmarked_class,
)
from reports.tasks import task_reports
from sr.vocab import (
    CLASS_ALL,
    COL_CI_HIGH,
    COL_CI_LOW,
    COL_DATASET,
    COL_METHOD,
    COL_VALUE,
    FLAG_LR_INCONSISTENT,
    FLAG_RANDOM_WEIGHTS,
)

MARK_NOTE = (
    "Bold: best, italic: second best in the column, each marked only where its paired bootstrap difference "
    "to the next-ranked method is significant (p < 0.05; the second only under a marked best); a column "
    "without marks has no significant leader. Brackets: 95 % bootstrap interval over images. Reference rows "
    "(hr, lr) and rows made with random weights are not ranked."
)


def _ranked(method: str) -> bool:
    from sr.errors import UserError
    from sr.registry import method_spec

    try:
        return method_spec(method).family != "reference"
    except (UserError, KeyError, OSError):
        return True


def label_methods(df: pd.DataFrame, table: pd.DataFrame) -> dict[str, str]:
    """Row label of a table (method name plus flag marks) -> method name."""
    labels = {}
    for method in df[COL_METHOD].astype(str).unique():
        for label in table.index:
            if str(label) == method or str(label).startswith(method + " "):
                labels[label] = method
    return labels


def interval_table(
    df: pd.DataFrame,
    pivot: Callable[..., pd.DataFrame],
    samples: RunEvidence,
    key_of: Callable[[tuple], tuple[str, str, str]],
    higher_better_of: Callable[[tuple], bool],
    key: str,
    title: str,
) -> ReportTable | None:
    """``pivot(df, values=...)`` -> rows = labels, columns = (data set, x); ``key_of(column)`` -> (task, metric,
    class); the table of values with their intervals, marks and notes (None when there are no values)."""
    values = pivot(df, values=COL_VALUE)
    if values.empty:
        return None
    low, high = pivot(df, values=COL_CI_LOW), pivot(df, values=COL_CI_HIGH)
    methods = label_methods(df, values)
    random = {m for m, flags in method_flags(df).items() if FLAG_RANDOM_WEIGHTS in flags}  # not measurements
    rankable = [
        label
        for label in values.index
        if _ranked(methods.get(label, str(label))) and methods.get(label, str(label)) not in random
    ]
    inconsistent = {  # (data set, method) whose outputs do not match their LR input: never marked best
        (str(d), str(m))
        for (d, m), rows in df.groupby([COL_DATASET, COL_METHOD])
        if FLAG_LR_INCONSISTENT in flags_in(rows)
    }
    marks = {}
    for column in values.columns:
        ranked = values[column][
            [label for label in rankable if (str(column[0]), methods.get(label, str(label))) not in inconsistent]
        ]
        by_method = pd.Series(ranked.to_numpy(), index=[methods.get(label, str(label)) for label in ranked.index])
        got = ranked_marks(by_method, samples, column[0], key_of(column), higher_better_of(column))
        label_of = {m: label for label, m in methods.items()}
        marks[column] = {label_of.get(m, m): mark for m, mark in got.items()}
    return ReportTable(key, title, values, low, high, marks, notes=[*table_notes(values), MARK_NOTE])


def quality_interval_table(df: pd.DataFrame, samples: RunEvidence) -> ReportTable | None:
    from downstream.metrics import metric_specs

    specs = metric_specs()
    return interval_table(
        df,
        quality_table,
        samples,
        lambda col: ("quality", col[1], CLASS_ALL),
        lambda col: specs[col[1]].higher_better if col[1] in specs else True,
        "quality",
        "Image quality (mean over images; reference metrics, then no-reference)",
    )


def per_class_interval_table(
    df: pd.DataFrame, samples: RunEvidence, task: str, metric: str, spec: ResultMetric | None
) -> ReportTable | None:
    """One task's per-class ``metric``; ``spec``: the metric's declaration (its direction), None when unknown."""
    higher = spec.higher_better if spec is not None else True
    direction = "" if spec is None else (" (higher is better)" if higher else " (lower is better)")
    return interval_table(
        df,
        lambda d, values: per_class_table(d, task, metric, values),
        samples,
        lambda col: (task, metric, unmarked_class(col[1])),
        lambda col: higher,
        f"{task}_per_class",
        f"{md_text(task.capitalize())}: {md_text(metric)} per class{direction}",
    )


def run_tables(
    df: pd.DataFrame, samples: RunEvidence, meta: dict | None, significance: pd.DataFrame, reference: str
) -> list[ReportTable]:
    """Every table of a run's own report, in order, built once for report.md, the per-table files and
    report.html: image quality, each task's per-class metric, the significant differences to ``reference``
    (``significance``: ``reports.significance.significance_table``) and the rows not computed."""
    tables = [quality_interval_table(df, samples)]
    for task, (report, metrics) in task_reports(df, meta).items():
        tables.append(per_class_interval_table(df, samples, task, report.per_class, metrics.get(report.per_class)))
    tables.append(significance_report(significance, reference))
    problems = problems_table(df)
    if not problems.empty:
        tables.append(ReportTable("problems", "Not computed, and why", problems, index=False))
    return [t for t in tables if t is not None]


def no_reference_radars(df: pd.DataFrame, out: Path) -> list[tuple[str, Path]]:
    """One radar per data set over its no-reference quality metrics (axes normalised, outward = better, interval
    bands); returns (caption, png) pairs."""
    from downstream.metrics import KIND_NO_REFERENCE, metric_specs

    specs = metric_specs()
    values, low, high = (quality_table(df, values=v) for v in (COL_VALUE, COL_CI_LOW, COL_CI_HIGH))
    if values.empty:
        return []
    figures = []
    for dataset in values.columns.get_level_values(0).unique():
        table = values[dataset]
        axes = [m for m in table.columns if m in specs and specs[m].kind == KIND_NO_REFERENCE]
        table = table[axes].dropna(how="any")
        if len(axes) < 3 or table.empty:
            continue
        v, lo, hi = normalised_for_radar(
            table,
            low[dataset][axes].reindex(table.index),
            high[dataset][axes].reindex(table.index),
            {m: specs[m].higher_better for m in axes},
        )
        caption = f"No-reference quality ({dataset}): each axis min-max normalised over methods, outward = better"
        paths = radar_plot(
            v,
            f"No-reference quality ({dataset}), outward = better",
            out / f"radar_quality_{file_stem(dataset)}",
            low=lo,
            high=hi,
            axes=axes,
        )
        if paths:
            figures.append((caption, paths[0]))
    return figures


def significance_report(sig: pd.DataFrame, reference: str) -> ReportTable:
    """The paired differences to ``reference`` in a sentence: the differences themselves are drawn, one picture per
    data set and task (``reports.significance_figure``), and every row, significant or not, is in significance.csv
    (a table of them ran to 130 rows on the demo)."""
    text = (
        f"Paired differences method - {md_text(reference)} over the same images: 95 % bootstrap interval, bootstrap "
        "p-value, Holm-corrected across the methods of each data set / task / metric / class. All rows: "
        "`significance.csv`."
    )
    if not sig.empty:
        text += f" {int(sig.significant.sum())} of {len(sig)} differences are significant (p_holm < 0.05)."
    return ReportTable(
        "significance",
        f"Significance against {md_code(reference)}",
        pd.DataFrame(),
        text=text,
        index=False,
        files=False,
        empty=f"No comparisons (no {md_code(reference)} rows, or no per-image samples in the run)."
        if sig.empty
        else "One picture per data set and task (methods x metrics, the difference coloured, * = significant) "
        "under *Significance pictures* (report.md) and *Figures* (report.html); every row, per class included: "
        "`significance.csv`.",
    )
