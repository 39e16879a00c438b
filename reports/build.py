"""Build every table and plot of a run from its results.csv, plus the run's per-image samples for intervals and
significance (``downstream.evidence``; no model is re-run)."""

from __future__ import annotations

from pathlib import Path

from downstream.evidence import DEFAULT_REFERENCE
from reports.intervals import MARK_NOTE, interval_table, no_reference_radars, quality_interval_table, significance_lines
from reports.radar import radar_plot
from reports.runinfo import run_meta
from reports.significance import load_samples, significance_table
from reports.tables import (
    flag_notes,
    flags_in,
    load_results,
    per_class_table,
    problems_table,
    quality_table,
    table_notes,
    write_table,
)
from reports.tasks import task_reports
from sr.atomic import atomic_folder
from sr.vocab import COL_CI_HIGH, COL_CI_LOW


def build_reports(results_csv: str | Path, out_dir: str | Path, reference: str = DEFAULT_REFERENCE) -> Path:
    """Write the report of ``results_csv`` to ``out_dir``, all or nothing: it is built in a new folder beside
    ``out_dir`` and swapped in at the end (``sr.atomic.atomic_folder``), so a failure (a full disk) leaves the
    previous report whole instead of a mix of new tables and an old or cut ``report.md``. ``reference``: the
    method every other one is compared with in ``significance.csv``."""
    df = load_results(results_csv)
    with atomic_folder(out_dir, "report.md", "a report folder") as staging:
        _build(results_csv, df, staging, reference)
    return Path(out_dir)


def _build(results_csv: str | Path, df, out: Path, reference: str) -> None:
    samples = load_samples(Path(results_csv).parent)
    sections = []
    quality = quality_table(df)
    if not quality.empty:
        write_table(quality, out / "quality")
        sections.append(
            (
                "Image quality (mean over images; reference metrics, then no-reference)",
                quality_interval_table(df, samples),
            )
        )
    no_reference_radars(df, out)
    for task, (report, metrics) in task_reports(df, run_meta(Path(results_csv).parent)).items():
        metric = report.per_class
        table = per_class_table(df, task, metric)
        if table.empty:
            continue
        write_table(table, out / f"{task}_per_class")
        higher = metrics[metric].higher_better if metric in metrics else True
        direction = "" if metric not in metrics else (" (higher is better)" if higher else " (lower is better)")
        sections.append(
            (
                f"{task.capitalize()}: {metric} per class{direction}",
                interval_table(
                    df,
                    lambda d, values, t=task, m=metric: per_class_table(d, t, m, values),
                    samples,
                    lambda col, t=task, m=metric: (t, m, col[1]),
                    lambda col, h=higher: h,
                ),
            )
        )
        low, high = (per_class_table(df, task, metric, values=v) for v in (COL_CI_LOW, COL_CI_HIGH))
        for dataset in table.columns.get_level_values(0).unique():
            radar_plot(
                table[dataset],
                f"{task} {metric} per class ({dataset})",
                out / f"radar_{task}_{dataset}",
                low=low.get(dataset),
                high=high.get(dataset),
            )
    significance = significance_table(df, samples, reference)
    significance.to_csv(out / "significance.csv", index=False)
    problems = problems_table(df)
    if not problems.empty:
        write_table(problems, out / "problems")
    lines = ["# Benchmark report", "", f"Source: `{Path(results_csv).name}`", ""]
    notes = flag_notes(flags_in(df))
    if notes:
        lines += ["Marks on a row: its numbers carry a caveat (the `flags` column of results.csv):", ""]
        lines += [f"* {n}" for n in notes] + [""]
    for title, table in sections:
        lines += [f"## {title}", "", table.to_markdown(floatfmt=".4f"), ""]
        lines += [f"* {n}" for n in table_notes(table)] + [""] if table_notes(table) else []
    if sections:
        lines += [MARK_NOTE, ""]
    lines += significance_lines(significance, reference)
    if not problems.empty:
        lines += ["## Not computed, and why", "", problems.to_markdown(index=False), ""]
    lines += _run_lines(results_csv, df)
    (out / "report.md").write_text("\n".join(lines))
    _paper_report(results_csv, out / "paper", reference)


def _run_lines(results_csv, df) -> list[str]:
    """The ``## Run`` section: versions, seed, device, flags, per-method weights sha256 (from run.json)."""
    from reports import runinfo

    try:
        return runinfo.markdown(runinfo.load_run_json(Path(results_csv).parent), df)
    except ValueError as exc:
        return ["## Run", "", f"run.json unreadable: {exc}", ""]


def _paper_report(results_csv, out_dir: Path, reference: str) -> None:
    """The paper's tables/figures and the self-contained report.html (reports.paper); never fails the run."""
    import logging

    try:
        from reports.paper import build_paper_report

        build_paper_report(results_csv, out_dir, reference=reference)
    except Exception as exc:  # the basic report above is written already
        logging.getLogger(__name__).warning("paper report not written: %s: %s", type(exc).__name__, exc)
