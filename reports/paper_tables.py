"""The paper's tables regenerated from a results.csv, side by side with the published numbers.

``reports/paper_numbers.csv`` holds the numbers the DifIISR paper prints, transcribed once from the text
of the paper (``../shared/papers/001_*`` = main, ``000_*`` = supplement), long format:
``table, row, row_label, column, value, mark, source, note``. ``value`` is the text as printed (so
``48.3307`` stays ``48.3307``), ``mark`` is ``underline`` where the text extraction kept the paper's
underline (second best; the bold of the best did not survive the extraction), ``source`` is
``main:LINE`` / ``supp:LINE`` in those text files, ``note`` flags doubtful cells.

Each table below is a :class:`TableSpec`: which of our (data set, task, metric, class) a paper column is,
and which results rows a paper row is.

* Method tables (main Tables 1 and 2, supplementary Table 1): a results method is a paper row when its
  ``paper_name`` (``configs/methods/<name>.yaml``, or a plug-in's metadata; a method without either, e.g. a
  folder of outputs, is its own name) is that row's name. Methods with results that the paper does not list are
  added below the paper's rows (Table 2: only methods whose ``family`` is ``diffusion``). The Low-Resolution row is
  the method ``lr`` (absent: "—").
* Ablation tables (main Tables 3 and 4, supplementary Tables 2 and 3): a paper row is one trained variant;
  :data:`ABLATION_METHODS` says which method carries it (the finished training runs of the ablation configs in
  ``configs/train/``, registered as methods by themselves; the full model is the ``difiisr_full`` run, else the
  released ``difiisr``). Columns: PSNR and CLIP-IQA on the
  ``ablation`` data set, mAP (= detection ``mAP50-95`` × 100) on the ``detection`` data set and mIoU
  (= segmentation ``mIoU`` × 100) on the ``segmentation`` data set; the paper does not say which split
  its ablations use, we take M3FD test / FMB test (:data:`DEFAULT_DATASETS`, change with ``--dataset``).

Best (bold) and second best (underline) are marked per column among the method rows, the reference rows
(Low Resolution, High Resolution) left out, as the paper does; separately for "paper" and "ours".
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from reports.escape import csv_frame
from reports.report_table import html_table, latex_table, markdown_table
from reports.tables import flag_notes, marked
from sr.errors import UserError
from sr.vocab import (
    CLASS_ALL,
    COL_CI_HIGH,
    COL_CI_LOW,
    COL_CLASS,
    COL_DATASET,
    COL_ERROR,
    COL_FLAGS,
    COL_METHOD,
    COL_METRIC,
    COL_TASK,
    COL_VALUE,
    FLAG_LR_INCONSISTENT,
    FLAG_RANDOM_WEIGHTS,
    split_flags,
)

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.csv")
#: the suites (configs/suites) whose results the paper's tables are made of; a run's report writes them only for these
PAPER_SUITES = ("paper", "paper_supp")
MISSING = "—"

#: paper data set label -> results data set name (``--dataset LABEL=NAME`` overrides)
DEFAULT_DATASETS = {
    "Set5": "m3fd_set5",
    "Set15": "m3fd_set15",
    "Set20": "m3fd_set20",
    "TNO": "tno",
    "RoadScene": "roadscene",
    "ablation": "m3fd_test",
    "detection": "m3fd_test",
    "segmentation": "fmb_test",
}

#: the paper data sets of Figure 3, one frame of each in one figure ("one image from each of the three datasets")
FIGURE3_SETS = ("Set5", "Set15", "Set20")
#: Figure 6's axes as the paper draws them: the overall metric and three classes per task. Segmentation: "the three
#: primary segmentation classes" truck, car and human (FMB person), as its text names them; detection: its text names
#: truck only, the other two taken to be the same classes as segmentation's (M3FD People, Car). Class names of other
#: data sets: every class is drawn.
FIGURE6_CLASSES = {"detection": ("People", "Car", "Truck"), "segmentation": ("person", "car", "truck")}

ABLATION_ONLY: set[str] = set()  # filled below: ablation variants stay out of the method tables
REFERENCE_ROWS = ("Low Resolution", "High Resolution")

#: ablation row key (paper_numbers.csv ``row``) -> the methods that carry it, first found wins: the training runs of
#: configs/train/ (a finished run is a method named after its folder, sr.train.run_method), for the full model the
#: trained difiisr_full run, else the released weights (``difiisr``)
FULL_MODEL = ("difiisr_full", "difiisr")
ABLATION_METHODS: dict[str, tuple[str, ...]] = {
    "none": ("difiisr_t3_none",),  # no guidance (Tab. 3 row 1, supp. Tab. 2/3 "-")
    "visual": ("difiisr_t3_visual",),  # visual guidance only (= Tab. 4 "Visual Base")
    "perceptual": ("difiisr_t3_perceptual",),  # perceptual guidance only (= "Perceptual Base")
    "both": FULL_MODEL,
    "ours": FULL_MODEL,
    "perceptual_base": ("difiisr_t3_perceptual",),
    "perceptual+visual_sum": ("difiisr_t4_perceptual_base_visual_sum",),  # visual loss added to the loss (Σ L)
    "perceptual+visual_grad": FULL_MODEL,
    "visual_base": ("difiisr_t3_visual",),
    "visual+task_sum": ("difiisr_t4_visual_base_task_sum",),  # perceptual (task) loss added (Σ L)
    "visual+task_grad": FULL_MODEL,
    "ssim": ("difiisr_s2_ssim",),  # supp. Tab. 2 (default reading: no perceptual guidance; docs/reproduce.md)
    "mse": ("difiisr_s2_mse",),
    "lpips": ("difiisr_s3_lpips",),  # supp. Tab. 3 (default reading: no visual guidance)
    "edge": ("difiisr_s3_edge",),
}
ABLATION_ONLY.update(m for ms in ABLATION_METHODS.values() for m in ms if m != "difiisr")


@dataclass(frozen=True)
class Column:
    name: str  # paper column, e.g. "Set5/CLIP-IQA"
    dataset: str  # paper data set label (key of the data set map)
    task: str
    metric: str
    higher: bool = True
    scale: float = 1.0  # ours * scale is in the paper's unit
    decimals: int = 4


@dataclass(frozen=True)
class TableSpec:
    key: str
    title: str
    columns: tuple[Column, ...]
    ablation: bool = False
    extra_rows: str = "all"  # method tables: which results methods not in the paper to add ("all", "diffusion", "none")
    reference: tuple[str, ...] = ()  # reference rows (paper names) shown after the paper's rows though it lacks them
    notes: tuple[str, ...] = field(default_factory=tuple)


def _q(ds: str, metric: str, label: str, higher: bool = True, decimals: int = 4) -> Column:
    return Column(f"{ds}/{label}", ds, "quality", metric, higher, 1.0, decimals)


_NR = lambda ds: (_q(ds, "clipiqa", "CLIP-IQA"), _q(ds, "musiq", "MUSIQ", decimals=3))  # noqa: E731
_ABL = (
    Column("PSNR", "ablation", "quality", "psnr", True, 1.0, 3),
    Column("CLIP-IQA", "ablation", "quality", "clipiqa", True, 1.0, 4),
    Column("mAP", "detection", "detection", "mAP50-95", True, 100.0, 1),
    Column("mIoU", "segmentation", "segmentation", "mIoU", True, 100.0, 1),
)

TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "main_table1",
        "Table 1. No-reference metrics on M3FD Set5 / Set15 / Set20",
        _NR("Set5") + _NR("Set15") + _NR("Set20"),
        notes=("Low Resolution: the LR image interpolated to the HR size (results method `lr`).",),
    ),
    TableSpec(
        "main_table2",
        "Table 2. Reference-based metrics of the diffusion methods on M3FD",
        tuple(
            c
            for ds in ("Set5", "Set15", "Set20")
            for c in (_q(ds, "psnr", "PSNR", decimals=3), _q(ds, "ssim", "SSIM"), _q(ds, "lpips", "LPIPS", False))
        ),
        extra_rows="diffusion",
        reference=("Low Resolution",),
        notes=("Low Resolution (not in the paper's table): the LR image interpolated to the HR size (method `lr`).",),
    ),
    TableSpec(
        "supp_table1", "Supplementary Table 1. No-reference metrics on TNO and RoadScene", _NR("TNO") + _NR("RoadScene")
    ),
    TableSpec("main_table3", "Table 3. Ablation: effectiveness of the guidance", _ABL, ablation=True),
    TableSpec("main_table4", "Table 4. Ablation: guidance combinations", _ABL, ablation=True),
    TableSpec("supp_table2", "Supplementary Table 2. Ablation: visual guidance", _ABL, ablation=True),
    TableSpec("supp_table3", "Supplementary Table 3. Ablation: perceptual guidance", _ABL, ablation=True),
)


@lru_cache(maxsize=4)
def paper_numbers(path: str | Path = PAPER_NUMBERS) -> pd.DataFrame:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    df = pd.DataFrame(rows)
    df["number"] = df["value"].astype(float)
    return df


@lru_cache(maxsize=256)
def paper_label(method: str) -> str:
    """The paper's name of a results method: its YAML's (or plug-in's) ``paper_name``, else the method itself."""
    from sr.registry import method_spec

    try:
        return method_spec(method).paper_name or method
    except UserError:  # no such method here (a folder of outputs, a plug-in not installed)
        return method


def _method_family(method: str) -> str:
    from sr.registry import method_spec

    try:
        return method_spec(method).family
    except UserError:
        return ""


def _ours_lookup(
    df: pd.DataFrame,
) -> tuple[
    dict[tuple[str, str, str, str, str], float],
    dict[tuple[str, str, str, str, str], set[str]],
    dict[tuple[str, str, str, str, str], tuple[float, float]],
]:
    """(dataset, method, task, metric, class) -> value, -> the row's flags, and -> its 95 % interval."""
    ok = df[df[COL_VALUE].notna() & (df[COL_ERROR] == "")]
    keys = list(zip(*[ok[c].astype(str) for c in (COL_DATASET, COL_METHOD, COL_TASK, COL_METRIC, COL_CLASS)]))
    bounds = (
        zip(ok[COL_CI_LOW], ok[COL_CI_HIGH])
        if {COL_CI_LOW, COL_CI_HIGH} <= set(ok.columns)
        else ((math.nan, math.nan) for _ in keys)
    )
    return (
        {key: float(v) for key, v in zip(keys, ok[COL_VALUE])},
        {key: split_flags(f) for key, f in zip(keys, ok[COL_FLAGS])},
        {key: (float(lo), float(hi)) for key, (lo, hi) in zip(keys, bounds)},
    )


@dataclass
class PaperTable:
    """One regenerated table: ``values`` rows = row labels, columns = (paper column, paper|ours|Δ)."""

    spec: TableSpec
    values: pd.DataFrame
    methods: dict[str, str]  # row label -> results method ('' when none)
    reference_rows: set[str]
    random_rows: set[str]  # rows made with random weights: left out of best / second
    datasets: dict[str, str]
    flags: set[str] = field(default_factory=set)  # every flag of a number shown (the notes explain each mark)
    intervals: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # (row, column): ours' CI
    samples: Any = None  # the run's per-image samples (reports.significance): gate ours' marks by significance
    empty: dict[str, str] = field(default_factory=dict)  # column with no number of ours -> why (a results error)
    #: (row, column) of ours whose SR outputs do not match their LR input (lr_inconsistent): never marked best
    inconsistent: set[tuple[str, str]] = field(default_factory=set)

    def marks(self, source: str) -> dict[tuple[str, str], str]:
        """(row, column) -> 'best' | 'second' for ``source`` ('paper' or 'ours'). With ``samples``, ours' marks are
        given only where the paired difference to the next-ranked row is significant (``ranked_marks``)."""
        out: dict[tuple[str, str], str] = {}
        for col in self.spec.columns:
            skip = self.reference_rows
            if source == "ours":
                skip = skip | self.random_rows | {row for row, name in self.inconsistent if name == col.name}
            s = self.values[(col.name, source)].drop(labels=list(skip), errors="ignore").dropna()
            if s.empty:
                continue
            if source == "ours" and self.samples is not None:
                from reports.significance import ranked_marks

                by_method = pd.Series(s.to_numpy(), index=[self.methods[row] for row in s.index])
                got = ranked_marks(
                    by_method, self.samples, self.datasets[col.dataset], (col.task, col.metric, CLASS_ALL), col.higher
                )
                out.update({(row, col.name): got[self.methods[row]] for row in s.index if self.methods[row] in got})
                continue
            s = s.round(col.decimals)
            ranked = sorted(set(s), reverse=col.higher)
            for row, v in s.items():
                if v == ranked[0]:
                    out[(row, col.name)] = "best"
                elif len(ranked) > 1 and v == ranked[1]:
                    out[(row, col.name)] = "second"
        return out

    def formatted(self, style: str = "md") -> pd.DataFrame:
        """Strings with best/second marks: style 'md' (**x**, <u>x</u>), 'tex' or 'html'."""
        wrap = {
            "md": ("**{}**", "<u>{}</u>"),
            "tex": ("\\textbf{{{}}}", "\\underline{{{}}}"),
            "html": ("<b>{}</b>", "<u>{}</u>"),
        }[style]
        marks = {src: self.marks(src) for src in ("paper", "ours")}
        cols = {}
        for col in self.spec.columns:
            for src in ("paper", "ours", "Δ"):
                cells = []
                for row, v in self.values[(col.name, src)].items():
                    if v is None or (isinstance(v, float) and math.isnan(v)):
                        cells.append(MISSING)
                        continue
                    text = f"{v:+.{col.decimals}f}" if src == "Δ" else f"{v:.{col.decimals}f}"
                    m = marks.get(src, {}).get((row, col.name))
                    text = wrap[0].format(text) if m == "best" else wrap[1].format(text) if m == "second" else text
                    lo, hi = self.intervals.get((row, col.name), (math.nan, math.nan)) if src == "ours" else (0, 0)
                    if src == "ours" and math.isfinite(lo) and math.isfinite(hi):
                        text += f" [{lo:.{col.decimals}f}, {hi:.{col.decimals}f}]"
                    cells.append(text)
                cols[(col.name, src)] = cells
        out = pd.DataFrame(cols, index=self.values.index)
        out.columns = pd.MultiIndex.from_tuples(out.columns)
        return out


def _row_label(label: str, method: str, duplicate: bool) -> str:
    return f"{label} ({method})" if duplicate else label


def _table_rows(
    spec: TableSpec, paper: pd.DataFrame, methods_in_results: list[str], datasets: dict[str, str], ours: dict
) -> list[tuple[str, str | None, str]]:
    """The table's rows as (label, paper row key or None, results method or ''): the paper's rows in its order
    (an ablation row by the runs that carry it), then the reference rows and the extra methods of the results."""
    paper_rows = list(dict.fromkeys(paper["row"]))
    rows: list[tuple[str, str | None, str]] = []  # (label, paper row key or None, results method or '')
    if spec.ablation:
        labels = dict(zip(paper["row"], paper["row_label"]))
        for key in paper_rows:
            method = next((m for m in ABLATION_METHODS.get(key, ()) if m in methods_in_results), "")
            rows.append((_row_label(labels[key], method, False), key, method))
    else:
        by_label: dict[str, list[str]] = {}
        for m in methods_in_results:
            by_label.setdefault(paper_label(m), []).append(m)
        has_data = {
            m
            for m in methods_in_results
            if any((datasets.get(c.dataset, c.dataset), m, c.task, c.metric, CLASS_ALL) in ours for c in spec.columns)
        }
        for key in paper_rows:
            found = [m for m in by_label.get(key, []) if m in has_data] or by_label.get(key, [])[:1]
            if not found:
                rows.append((key, key, ""))
            for m in found:
                rows.append((_row_label(key, m, len(found) > 1), key, m))
        for label in spec.reference:
            for m in [m for m in by_label.get(label, []) if m in has_data][:1]:
                rows.append((label, label, m))
        if spec.extra_rows != "none":
            for m in methods_in_results:
                label = paper_label(m)
                if label in paper_rows or m not in has_data or m in ABLATION_ONLY:
                    continue
                if spec.extra_rows == "diffusion" and _method_family(m) != "diffusion":
                    continue
                rows.append((_row_label(label, m, len(by_label.get(label, [])) > 1), None, m))

    return rows


def build_table(
    spec: TableSpec,
    df: pd.DataFrame,
    datasets: dict[str, str] | None = None,
    numbers: pd.DataFrame | None = None,
    samples: Any = None,
) -> PaperTable:
    """``samples``: the run's per-image samples (``reports.significance.load_evidence``), for significance-gated
    marks of our numbers; without them the marks go by rank alone."""
    datasets = {**DEFAULT_DATASETS, **(datasets or {})}
    numbers = paper_numbers() if numbers is None else numbers
    paper = numbers[numbers.table == spec.key]
    paper_value = {(r.row, r.column): r.number for r in paper.itertuples()}
    ours, ours_flags, ours_ci = _ours_lookup(df)
    methods_in_results = list(dict.fromkeys(df[COL_METHOD]))

    rows = _table_rows(spec, paper, methods_in_results, datasets, ours)

    # each row label carries the marks of the flags of the numbers it shows
    row_flags = [
        set().union(
            *(
                ours_flags.get((datasets.get(c.dataset, c.dataset), m, c.task, c.metric, CLASS_ALL), set())
                for c in spec.columns
            )
        )
        if m
        else set()
        for _, _, m in rows
    ]
    rows = [(marked(label, f), key, m) for (label, key, m), f in zip(rows, row_flags)]
    data: dict[tuple[str, str], list[float]] = {}
    intervals: dict[tuple[str, str], tuple[float, float]] = {}
    for col in spec.columns:
        ds = datasets.get(col.dataset, col.dataset)
        p, o = [], []
        for label, key, method in rows:
            p.append(paper_value.get((key, col.name), math.nan) if key is not None else math.nan)
            v = ours.get((ds, method, col.task, col.metric, CLASS_ALL), math.nan) if method else math.nan
            o.append(v * col.scale)
            if method:
                lo, hi = ours_ci.get((ds, method, col.task, col.metric, CLASS_ALL), (math.nan, math.nan))
                intervals[(label, col.name)] = (lo * col.scale, hi * col.scale)
        data[(col.name, "paper")] = p
        data[(col.name, "ours")] = o
        data[(col.name, "Δ")] = [b - a for a, b in zip(p, o)]
    errors = df[(df[COL_ERROR] != "") & (df[COL_CLASS].astype(str) == CLASS_ALL)]
    why = dict(zip(zip(errors[COL_DATASET].astype(str), errors[COL_METRIC].astype(str)), errors[COL_ERROR]))
    empty = {
        col.name: why[(datasets.get(col.dataset, col.dataset), col.metric)]
        for col in spec.columns
        if all(math.isnan(v) for v in data[(col.name, "ours")])
        and (datasets.get(col.dataset, col.dataset), col.metric) in why
    }
    index = pd.Index([r[0] for r in rows], name="method")
    values = pd.DataFrame(data, index=index)
    values.columns = pd.MultiIndex.from_tuples(values.columns)
    reference = {label for label, key, _ in rows if key in REFERENCE_ROWS}
    rnd = {label for (label, _, _), f in zip(rows, row_flags) if FLAG_RANDOM_WEIGHTS in f}
    inconsistent = {  # as in the run's tables: an output unrelated to its input wins nothing
        (label, col.name)
        for col in spec.columns
        for label, _, m in rows
        if m
        and FLAG_LR_INCONSISTENT
        in ours_flags.get((datasets.get(col.dataset, col.dataset), m, col.task, col.metric, CLASS_ALL), set())
    }
    return PaperTable(
        spec,
        values,
        {label: m for label, _, m in rows},
        reference,
        rnd,
        {c.dataset: datasets.get(c.dataset, c.dataset) for c in spec.columns},
        set().union(*row_flags),
        intervals,
        samples,
        empty,
        inconsistent,
    )


def build_all(df: pd.DataFrame, datasets: dict[str, str] | None = None, samples: Any = None) -> list[PaperTable]:
    return [build_table(spec, df, datasets, samples=samples) for spec in TABLES]


def _notes(table: PaperTable) -> list[str]:
    notes = [
        f"paper = the published number (reports/paper_numbers.csv); ours = this run; Δ = ours − paper; "
        f"{MISSING} = no number. **bold** = best, <u>underline</u> = second best (reference rows excluded)"
        + (
            "; ours marked only where the paired bootstrap difference to the next-ranked row is significant "
            "(p < 0.05), brackets = 95 % bootstrap interval over images."
            if table.samples is not None
            else "."
        ),
        "Data sets: " + ", ".join(f"{k} = `{v}`" for k, v in table.datasets.items()) + ".",
    ]
    if table.spec.ablation:
        notes.append(
            "Rows → methods: "
            + ", ".join(f"{label} = `{m or '(not run)'}`" for label, m in table.methods.items())
            + "."
        )
    notes += flag_notes(table.flags)
    notes += [f"{col}: no number of ours: {why}" for col, why in table.empty.items()]
    pn = paper_numbers()
    for r in pn[(pn.table == table.spec.key) & (pn.note != "")].itertuples():
        notes.append(f"Paper {r.row_label} / {r.column} ({r.source}): {r.note}.")
    return notes + list(table.spec.notes)


def write_paper_table(table: PaperTable, out_dir: str | Path) -> list[Path]:
    """``<key>.md`` (marks), ``<key>.csv`` (numbers), ``<key>.tex`` (marks); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / table.spec.key
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    flat = table.values.copy()
    flat.columns = [f"{c}|{s}" for c, s in flat.columns]
    csv_frame(flat).to_csv(paths[0], float_format="%.6g")
    paths[1].write_text(markdown_table(table.spec.title, table.formatted("md"), _notes(table)), encoding="utf-8")
    paths[2].write_text(
        latex_table(table.spec.title, table.spec.key, table.formatted("tex"), _notes(table)), encoding="utf-8"
    )
    return paths


def paper_html(table: PaperTable) -> str:
    """The table in html: two header rows (column, paper|ours|Δ), the marks, rows made with random weights shaded."""
    return html_table(
        table.spec.title,
        table.formatted("html"),
        _notes(table),
        row_class=dict.fromkeys(table.random_rows, "random"),
        header_class={"ours": "ours", "Δ": "d"},
    )
