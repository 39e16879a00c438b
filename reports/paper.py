"""``python -m reports.paper --results RESULTS.csv --out DIR``: the paper's tables and figures from a results.csv.

Writes, from the long-format results alone (plus, for the qualitative figures, the SR images of the run the
results.csv belongs to, when they are next to it):

* ``tables/<key>.{md,csv,tex}``: main Tables 1-4 and supplementary Tables 1-3, each column as
  paper | ours | Δ, best in bold and second best underlined (``reports.paper_tables``);
* ``figures/fig6_<task>_<data set>.{png,svg}``: radar plots of per-class detection mAP50-95 and
  segmentation IoU per method, the overall mAP / mIoU as one more axis (the paper's Figure 6);
* ``figures/fig3_*``, ``fig4_*``, ``fig5_*``: qualitative grids (``reports.qualitative``), when the run's SR
  images are there (``<run>/sr_outputs/*.csv``, written by the runner): the same crop of one frame per method,
  plain (Fig. 3), with the run's detector's detections (Fig. 4) and segmenter's masks (Fig. 5), both rebuilt
  from ``<run>/run.json``; ``--frame ID`` and ``--crop x1,y1,x2,y2`` choose them (default: the frame with the
  most boxes, a crop around its largest box cluster; see ``reports.qualitative``);
* ``paper.md`` (every table and figure) and ``report.html`` (self-contained: images embedded), both with the
  run metadata from ``<run>/run.json`` when present (versions, seed, device, flags, tasks and per-method weights
  sha256; ``reports.runinfo``, ``reports.html``).

``--dataset Set5=synthir_demo`` maps a paper data set label (Set5, Set15, Set20, TNO, RoadScene, ablation,
detection, segmentation) to a results data set, e.g. to fill the tables from the demo suite.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from downstream.evidence import DEFAULT_REFERENCE
from reports import runinfo
from reports.efficiency import efficiency_table
from reports.escape import csv_frame, file_stem, md_code, md_link, md_text
from reports.figure_files import own_figures, wait_for_figures
from reports.paper_tables import (
    ABLATION_ONLY,
    DEFAULT_DATASETS,
    FIGURE3_SETS,
    FIGURE6_CLASSES,
    PAPER_SUITES,
    build_all,
    paper_label,
    write_paper_table,
)
from reports.radar import radar_plot
from reports.run_tables import no_reference_radars, run_tables
from reports.runinfo import run_meta
from reports.significance import load_evidence, significance_table
from reports.significance_figure import metric_direction, significance_figures
from reports.tables import (
    FLAGS_LEAD,
    default_degradation_rows,
    flag_notes,
    flags_in,
    load_results,
    marked,
    method_flags,
)
from reports.tasks import task_reports
from sr import cli
from sr.cli import cli_entry
from sr.ownership import add_overwrite_option, check_apart, owned_folder
from sr.vocab import (
    CLASS_ALL,
    COL_CI_HIGH,
    COL_CI_LOW,
    COL_CLASS,
    COL_DATASET,
    COL_ERROR,
    COL_METHOD,
    COL_METRIC,
    COL_SUITE,
    COL_TASK,
    COL_VALUE,
)

log = logging.getLogger(__name__)


def radar_tables(
    df: pd.DataFrame, meta: dict | None = None, values: str = COL_VALUE
) -> dict[tuple[str, str], pd.DataFrame]:
    """(task, data set) -> rows = method (paper name), columns = classes + the overall metric (each task's
    ``TaskReport``: ``per_class`` metric per class, ``overall`` metric as the extra axis). ``values``: the column
    shown (``value``, or an interval bound ``ci_low`` / ``ci_high`` for the radar's band)."""
    out = {}
    if values not in df:
        return out
    ok = df[df[COL_VALUE].notna() & (df[COL_ERROR] == "")]
    for task, (report, _) in task_reports(df, meta).items():
        per_class, overall = report.per_class, report.overall
        axis = report.overall_label or overall or CLASS_ALL
        is_all = ok[COL_CLASS] == CLASS_ALL
        t = ok[
            (ok[COL_TASK] == task)
            & (((ok[COL_METRIC] == per_class) & ~is_all) | ((ok[COL_METRIC] == overall) & is_all))
        ].copy()
        if t.empty:
            continue
        t["cls"] = t[COL_CLASS].where(t[COL_CLASS] != CLASS_ALL, axis)
        t = t[~t[COL_METHOD].isin(ABLATION_ONLY)]  # ablation variants: Tables 3/4, not Figure 6
        labels = {m: paper_label(m) for m in t[COL_METHOD].unique()}
        dup = {lab for lab in labels.values() if list(labels.values()).count(lab) > 1}
        flags = method_flags(t)
        t["label"] = t[COL_METHOD].map(
            {m: marked(f"{lab} ({m})" if lab in dup else lab, flags.get(m, ())) for m, lab in labels.items()}
        )
        for ds, part in t.groupby(COL_DATASET):
            table = part.pivot_table(index="label", columns="cls", values=values, aggfunc="first", dropna=False)
            classes = ([axis] if axis in table.columns else []) + [c for c in table.columns if c != axis]
            out[(task, ds)] = table[classes]
    return out


def figure6_axes(task: str, columns: list[str]) -> list[str]:
    """The radar's axes as the paper's Figure 6 draws them: the overall metric (``columns[0]``, see
    :func:`radar_tables`) and the paper's three classes of ``task`` (:data:`FIGURE6_CLASSES`), matched without regard
    to case, in the paper's order; every column when the data set has none of them (other classes than the paper's)."""
    by_name = {str(c).lower(): c for c in columns[1:]}
    picked = [by_name[c.lower()] for c in FIGURE6_CLASSES.get(task, ()) if c.lower() in by_name]
    return columns[:1] + picked if picked else columns


def _axes_of(table: pd.DataFrame | None, axes: list[str]) -> pd.DataFrame | None:
    return None if table is None else table[[a for a in axes if a in table.columns]]


def build_paper_report(
    results_csv: str | Path,
    out_dir: str | Path,
    datasets: dict[str, str] | None = None,
    html: bool = True,
    qualitative: bool = True,
    frame: str | None = None,
    crop: tuple[int, int, int, int] | None = None,
    device: str = "cpu",
    reference: str = DEFAULT_REFERENCE,
    overwrite: bool = False,
    paper_tables: bool | None = True,
    from_run: FromRun | None = None,
) -> Path:
    """Write the paper's tables and figures (and report.html) of ``results_csv`` to ``out_dir``, all or nothing:
    built in a new folder beside it and swapped in at the end (``sr.ownership.owned_folder``), like the run's report.
    ``reference``: the method the html report's significance table compares every other one with.
    ``paper_tables``: write Tables 1-4 and the supplementary ones (True), none (False), or only for results of a
    paper suite (None, what a run's own report does: another suite's rows would fill them with dashes). ``from_run``:
    what the run and its own report already have, when the run writes this report (:class:`FromRun`)."""
    results_csv = Path(results_csv)
    df = default_degradation_rows(load_results(results_csv))  # the paper's protocol: bicubic rows only
    if paper_tables is None:
        paper_tables = bool(set(df[COL_SUITE].astype(str)) & set(PAPER_SUITES))
    with owned_folder(out_dir, "paper report", overwrite=overwrite) as staging, own_figures():
        view = (frame, crop, device)
        _build_paper(results_csv, df, staging, datasets, html, qualitative, view, reference, paper_tables, from_run)
    return Path(out_dir)


def _build_paper(
    results_csv, df, out: Path, datasets, html, qualitative, view, reference, paper_tables, from_run
) -> None:
    frame, crop, device = view
    (out / "tables").mkdir()
    (out / "figures").mkdir()
    samples = load_evidence(results_csv.parent)
    tables = build_all(df, datasets, samples=samples or None) if paper_tables else []
    for t in tables:
        write_paper_table(t, out / "tables")
    figures: list[tuple[str, Path]] = []
    meta = run_meta(results_csv.parent)
    reports = task_reports(df, meta)
    lows, highs = radar_tables(df, meta, COL_CI_LOW), radar_tables(df, meta, COL_CI_HIGH)
    for (task, ds), table in radar_tables(df, meta).items():
        metric = reports[task][0].per_class
        axes = figure6_axes(task, list(table.columns))
        paths = radar_plot(
            table[axes],
            f"Figure 6: {task} {metric} per class ({ds})",
            out / "figures" / f"fig6_{file_stem(task)}_{file_stem(ds)}",
            low=_axes_of(lows.get((task, ds)), axes),
            high=_axes_of(highs.get((task, ds)), axes),
        )
        if paths:
            figures.append((f"Figure 6 ({task}, {ds}): {metric} per class and overall", paths[0]))
    skipped: list[str] = []
    if qualitative:
        from reports.qualitative import qualitative_figures

        mapping = {**DEFAULT_DATASETS, **(datasets or {})}
        made, skipped = qualitative_figures(
            results_csv.parent,
            df,
            out / "figures",
            frame=frame,
            crop=crop,
            device=device,
            figure3={label: mapping[label] for label in FIGURE3_SETS},
            tasks=from_run.tasks if from_run else None,
        )
        figures += made
    for reason in skipped:
        log.warning("figure skipped: %s", reason)
    lines = ["# DifIISR paper tables and figures, regenerated", "", f"Source: {md_code(results_csv.name)}", ""]
    notes = flag_notes(flags_in(df))
    if notes:
        lines += [FLAGS_LEAD, ""] + [f"* {n}" for n in notes] + [""]
    for t in tables:
        lines += [(out / "tables" / f"{t.spec.key}.md").read_text(encoding="utf-8"), ""]
    efficiency = efficiency_table(results_csv.parent)  # measured by the run (--efficiency), rendered here
    if efficiency is not None:
        efficiency.write(out / "tables")
        lines += [efficiency.markdown(), ""]
    for caption, png in figures:
        link = md_link(png.relative_to(out).as_posix())
        lines += [f"### {md_text(caption)}", "", f"![{md_text(caption)}]({link})", ""]
    if skipped:
        lines += ["### Figures not made", ""] + [f"* {r}" for r in skipped] + [""]
    lines += runinfo.markdown(results_csv, df)
    (out / "paper.md").write_text("\n".join(lines), encoding="utf-8")
    if html:
        from reports.html import write_html_report

        if from_run is None:
            significance = significance_table(df, samples, reference)
            results = run_tables(df, samples, meta, significance, reference) + ([efficiency] if efficiency else [])
            pictures = no_reference_radars(df, out / "figures") + significance_figures(
                significance, out / "figures", reference, metric_direction(meta, df)
            )
        else:  # the run's report computed and drew these from the same rows: copied, not made again
            significance, results = from_run.significance, from_run.tables
            pictures = [(caption, _copy_figure(png, out / "figures")) for caption, png in from_run.figures]
        csv_frame(significance).to_csv(out / "significance.csv", index=False)  # the page's significance section
        wait_for_figures()  # every figure of this report, drawn in other processes (own_figures): the page embeds them
        write_html_report(out / "report.html", df, tables, figures + pictures, results_csv, skipped, results=results)


@dataclass
class FromRun:
    """What the run and its own report (``reports.build``) already have, handed to the paper report written with them
    so that nothing is built, computed or drawn twice: the run's task networks by task config (the runner's
    ``Resources.task``, for Figures 4/5), and the report's significance rows and run tables (the paper's protocol:
    bicubic rows only, reference ``reference``) and its no-reference radar and significance pictures, which
    report.html shows too."""

    tasks: Callable[[str], Any] | None
    significance: pd.DataFrame
    tables: list
    figures: list[tuple[str, Path]]


def _copy_figure(png: Path, folder: Path) -> Path:
    """``png`` and its SVG copy into ``folder`` (the paper report keeps every figure it shows); the new PNG path."""
    for path in (png, png.with_suffix(".svg")):
        if path.is_file():
            shutil.copyfile(path, folder / path.name)
    return folder / png.name


def _crop_arg(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise cli.UsageError(f"--crop wants x1,y1,x2,y2 (HR pixels), got {text!r}") from None
    if x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0:
        raise cli.UsageError(f"--crop {text!r}: need 0 <= x1 < x2 and 0 <= y1 < y2")
    return x0, y0, x1, y1


def _dataset_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise cli.UsageError(f"--dataset wants LABEL=NAME, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(
        prog="python -m reports.paper", description=__doc__, formatter_class=cli.argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--results", type=cli.existing_file, required=True, help="a results.csv written by benchmarks.run")
    p.add_argument("--out", type=cli.out_dir, required=True, help="output directory")
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="LABEL=NAME",
        help="paper data set label -> results data set (repeatable)",
    )
    p.add_argument("--no-html", action="store_true", help="skip report.html")
    p.add_argument("--no-qualitative", action="store_true", help="skip Figures 3/4/5")
    p.add_argument(
        "--frame",
        default=None,
        metavar="ID",
        help="frame (sample id) of Figures 3/4/5 (default: the one with most ground-truth boxes)",
    )
    p.add_argument(
        "--crop",
        default=None,
        metavar="X1,Y1,X2,Y2",
        help="crop of Figures 3/4/5 in HR pixels (default: a square around the largest box cluster "
        "of the frame, side max(96, min(H, W) // 3); the centre crop without boxes)",
    )
    p.add_device()
    add_overwrite_option(p)
    args = p.parse_args(argv)
    check_apart(args.out, [args.results])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = build_paper_report(
        args.results,
        args.out,
        _dataset_map(args.dataset),
        html=not args.no_html,
        qualitative=not args.no_qualitative,
        frame=args.frame,
        crop=_crop_arg(args.crop),
        device=args.device,
        overwrite=args.overwrite,
    )
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
