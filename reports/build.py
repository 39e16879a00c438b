"""Build every table and plot of a run from its results.csv, plus the run's per-image samples for intervals and
significance (``downstream.evidence``; no model is re-run)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from downstream.evidence import DEFAULT_REFERENCE
from reports import runinfo
from reports.efficiency import efficiency_table
from reports.escape import csv_frame, file_stem, md_code, md_link, md_text
from reports.figure_files import drawn_elsewhere, wait_for_figures
from reports.paper import FromRun, build_paper_report
from reports.radar import radar_plot
from reports.robustness import write_robustness
from reports.run_tables import no_reference_radars, run_tables
from reports.runinfo import run_meta
from reports.significance import load_evidence, significance_table
from reports.significance_figure import metric_direction, significance_figures
from reports.tables import FLAGS_LEAD, default_degradation_rows, flag_notes, flags_in, load_results
from reports.tasks import task_reports
from sr.ownership import owned_folder
from sr.vocab import COL_DEGRADATION, DEGRADATION_DEFAULT


def build_reports(
    results_csv: str | Path,
    out_dir: str | Path,
    reference: str = DEFAULT_REFERENCE,
    *,
    overwrite: bool = False,
    tasks: Callable[[str], Any] | None = None,
    draw_in: Callable[..., Future] | None = None,
) -> Path:
    """Write the report of ``results_csv`` to ``out_dir``, all or nothing: it is built in a new folder beside
    ``out_dir`` and swapped in at the end (``sr.ownership.owned_folder``: only a folder this tool made is replaced;
    ``overwrite`` writes beside a user's files), so a failure (a full disk) leaves the
    previous report whole instead of a mix of new tables and an old or cut ``report.md``. ``reference``: the
    method every other one is compared with in ``significance.csv``. ``tasks``: the run's task networks by task
    config (the runner's ``Resources.task``) when the run writes its own report, so its figures build none again.
    ``draw_in``: a process pool's ``submit`` that draws the figures beside the rest of the report (the run's
    workers: ``reports.figure_files.drawn_elsewhere``)."""
    df = load_results(results_csv)
    with owned_folder(out_dir, "report", overwrite=overwrite) as staging, drawn_elsewhere(draw_in):
        _build(results_csv, df, staging, reference, tasks)
    return Path(out_dir)


def _build(results_csv: str | Path, df, out: Path, reference: str, tasks: Callable[[str], Any] | None) -> None:
    run_dir = Path(results_csv).parent
    samples, meta = load_evidence(run_dir), run_meta(run_dir)
    significance = significance_table(df, samples, reference)  # every degradation
    csv_frame(significance).to_csv(out / "significance.csv", index=False)
    if set(df[COL_DEGRADATION]) != {DEGRADATION_DEFAULT}:  # a degradation axis: the robustness report
        write_robustness(df, out, meta)
    df = default_degradation_rows(df)  # the report's tables are the paper's protocol (bicubic) only
    significance = significance[significance[COL_DEGRADATION] == DEGRADATION_DEFAULT]
    tables = run_tables(df, samples, meta, significance, reference)
    efficiency = efficiency_table(run_dir)  # measured by the run (--efficiency), rendered here
    if efficiency is not None:
        tables.append(efficiency)
    for table in tables:
        if table.files:
            table.write(out)
    radars = no_reference_radars(df, out)
    by_key = {t.key: t for t in tables}
    for task, (report, _) in task_reports(df, meta).items():
        table = by_key.get(f"{task}_per_class")
        for dataset in table.values.columns.get_level_values(0).unique() if table else ():
            radar_plot(
                table.values[dataset],
                f"{task} {report.per_class} per class ({dataset})",
                out / f"radar_{file_stem(task)}_{file_stem(dataset)}",
                low=table.low.get(dataset),
                high=table.high.get(dataset),
            )
    lines = ["# Benchmark report", "", f"Source: {md_code(Path(results_csv).name)}", ""]
    notes = flag_notes(flags_in(df))
    if notes:
        lines += [FLAGS_LEAD, ""] + [f"* {n}" for n in notes] + [""]
    lines += [table.markdown() for table in tables]
    pictures = significance_figures(significance, out, reference, metric_direction(meta, df))
    if pictures:
        lines += ["## Significance pictures", "", "Every row, per class included: `significance.csv`.", ""]
        lines += [f"![{md_text(c)}]({md_link(png.name)})\n\n*{md_text(c)}*\n" for c, png in pictures]
    lines += runinfo.markdown(results_csv, df)
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    # what the paper report's html shows too, handed over rather than computed and drawn again: written first (a
    # figure that failed in a worker fails this report, as it does when drawn here)
    wait_for_figures()
    _paper_report(results_csv, out / "paper", reference, FromRun(tasks, significance, tables, radars + pictures))


def _paper_report(results_csv, out_dir: Path, reference: str, from_run: FromRun) -> None:
    """The paper's tables/figures and the self-contained report.html (reports.paper); never fails the run."""
    import logging

    try:
        build_paper_report(results_csv, out_dir, reference=reference, paper_tables=None, from_run=from_run)
    except Exception as exc:  # the basic report above is written already
        logging.getLogger(__name__).warning("paper report not written: %s: %s", type(exc).__name__, exc)
