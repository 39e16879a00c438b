"""``python -m reports.paper --results RESULTS.csv --out DIR``: the paper's tables and figures from a results.csv.

Writes, from the long-format results alone (plus, for the qualitative figures, the SR images of the run the
results.csv belongs to, when they are next to it):

* ``tables/<key>.{md,csv,tex}``: main Tables 1-4 and supplementary Tables 1-3, each column as
  paper | ours | Δ, best in bold and second best underlined (``reports.paper_tables``);
* ``figures/fig6_<task>_<data set>.{png,svg}``: radar plots of per-class detection mAP50-95 and
  segmentation IoU per method, the overall mAP / mIoU as one more axis (the paper's Figure 6);
* ``figures/fig3_*``, ``fig4_*``, ``fig5_*``: qualitative grids (``reports.qualitative``), when the run's SR
  images are there (``<run>/sr_outputs/*.csv``, written by the runner);
* ``paper.md`` (every table and figure) and ``report.html`` (self-contained: images embedded, run metadata
  from ``<run>/run.json`` when present; ``reports.html``).

``--dataset Set5=synthir_demo`` maps a paper data set label (Set5, Set15, Set20, TNO, RoadScene, ablation,
detection, segmentation) to a results data set, e.g. to fill the tables from the demo suite.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from reports.paper_tables import build_all, paper_label, write_paper_table
from reports.radar import radar_plot
from reports.tables import RANDOM_MARK, load_results

log = logging.getLogger(__name__)

#: task -> (per-class metric, overall metric, the overall axis label)
RADAR = {"detection": ("mAP50-95", "mAP50-95", "mAP"), "segmentation": ("IoU", "mIoU", "mIoU")}


def radar_tables(df: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """(task, data set) -> rows = method (paper name), columns = classes + the overall metric."""
    out = {}
    ok = df[df.value.notna() & (df.error == "")]
    random_methods = set(df.loc[df["flags"].str.contains("random_weights", na=False), "method"])
    for task, (per_class, overall, axis) in RADAR.items():
        t = ok[(ok.task == task) & (((ok.metric == per_class) & (ok["class"] != "all"))
                                    | ((ok.metric == overall) & (ok["class"] == "all")))].copy()
        if t.empty:
            continue
        t["cls"] = t["class"].where(t["class"] != "all", axis)
        t = t[~t.method.str.startswith("difiisr_abl_")]  # ablation variants: Tables 3/4, not Figure 6
        labels = {m: paper_label(m) for m in t.method.unique()}
        dup = {lab for lab in labels.values() if list(labels.values()).count(lab) > 1}
        t["label"] = t.method.map(lambda m: (f"{labels[m]} ({m})" if labels[m] in dup else labels[m])
                                  + (f" {RANDOM_MARK}" if m in random_methods else ""))
        for ds, part in t.groupby("dataset"):
            table = part.pivot_table(index="label", columns="cls", values="value", aggfunc="first")
            classes = [axis] + [c for c in table.columns if c != axis]
            out[(task, ds)] = table[classes]
    return out


def build_paper_report(results_csv: str | Path, out_dir: str | Path, datasets: dict[str, str] | None = None,
                       html: bool = True, qualitative: bool = True) -> Path:
    results_csv = Path(results_csv)
    df = load_results(results_csv)
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    tables = build_all(df, datasets)
    for t in tables:
        write_paper_table(t, out / "tables")
    figures: list[tuple[str, Path]] = []
    for (task, ds), table in radar_tables(df).items():
        metric = RADAR[task][0]
        paths = radar_plot(table, f"Figure 6: {task} {metric} per class ({ds})", out / "figures" / f"fig6_{task}_{ds}")
        if paths:
            figures.append((f"Figure 6 ({task}, {ds}): {metric} per class and overall", paths[0]))
    skipped: list[str] = []
    if qualitative:
        from reports.qualitative import qualitative_figures

        made, skipped = qualitative_figures(results_csv.parent, df, out / "figures")
        figures += made
    for reason in skipped:
        log.warning("figure skipped: %s", reason)
    lines = ["# DifIISR paper tables and figures, regenerated", "", f"Source: `{results_csv.name}`", ""]
    if df["flags"].str.contains("random_weights").any():
        lines += [f"{RANDOM_MARK} numbers made with RANDOM weights: not measurements.", ""]
    for t in tables:
        lines += [(out / "tables" / f"{t.spec.key}.md").read_text(encoding="utf-8"), ""]
    for caption, png in figures:
        lines += [f"### {caption}", "", f"![{caption}]({png.relative_to(out).as_posix()})", ""]
    if skipped:
        lines += ["### Figures not made", ""] + [f"* {r}" for r in skipped] + [""]
    (out / "paper.md").write_text("\n".join(lines), encoding="utf-8")
    if html:
        from reports.html import write_html_report

        write_html_report(out / "report.html", df, tables, figures, results_csv, skipped)
    return out


def _dataset_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--dataset wants LABEL=NAME, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.paper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, help="a results.csv written by benchmarks.run")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dataset", action="append", default=[], metavar="LABEL=NAME",
                   help="paper data set label -> results data set (repeatable)")
    p.add_argument("--no-html", action="store_true", help="skip report.html")
    p.add_argument("--no-qualitative", action="store_true", help="skip Figures 3/4/5")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        out = build_paper_report(args.results, args.out, _dataset_map(args.dataset), html=not args.no_html,
                                 qualitative=not args.no_qualitative)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.results}: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
