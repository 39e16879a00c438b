"""The efficiency table of a run: renders ``<run>/efficiency.csv`` (measured by the run's efficiency step,
``benchmarks.run --efficiency`` / ``benchmarks.speed.efficiency``; nothing is measured here) with the papers' own
efficiency numbers beside each method that they report (``reports/paper_efficiency.csv``: HF-Diff Table 5, UPSR
supplementary Tables 6 and 7, transcribed as printed, with the setting each was measured in)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from reports.report_table import ReportTable
from reports.tables import flag_notes, marked
from sr.errors import UserError
from sr.vocab import COL_FLAGS, COL_GFLOPS, COL_METHOD, COL_PARAMS_M, EFFICIENCY_COLUMNS, EFFICIENCY_FILE, split_flags

PAPER_EFFICIENCY = Path(__file__).with_name("paper_efficiency.csv")
HEADERS = (
    "Method",
    "Source",
    "Size (LR → SR)",
    "Device",
    "Params (M)",
    "GFLOPs",
    "Latency (ms)",
    "Peak memory (GiB)",
    "Note",
)


def read_efficiency(path: str | Path) -> pd.DataFrame:
    """An efficiency.csv as text cells; a file without its columns is an error naming it."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: cannot read the efficiency table: {exc}") from None
    missing = [c for c in EFFICIENCY_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: not an efficiency table written by benchmarks.speed.efficiency (no {missing})")
    return df


def _number(text: str, digits: int) -> str:
    try:
        value = float(text)
    except ValueError:
        return ""
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _measured_row(row: pd.Series, label: str) -> list[str]:
    ok = row["status"] == "ok"
    size = f"{row['size']} → {row['size_out']}" if row["size_out"] else row["size"]
    note = "" if ok else f"{row['status']}: {row['note']}".rstrip(": ")
    if ok and row["repeats"]:
        note = f"median of {row['repeats']} calls, {row['threads']} threads"
    return [
        label,
        "measured (this run)",
        size,
        row["device"],
        _number(row[COL_PARAMS_M], 2) if ok else "",
        _number(row[COL_GFLOPS], 2) if ok else "",
        _number(row["latency_ms"], 1) if ok else "",
        _number(row["peak_gib"], 3) if ok else "",
        note,
    ]


def _paper_row(row: pd.Series, label: str) -> list[str]:
    time_ms = f"{1e3 * float(row['time_s']):.0f}" if row["time_s"] else ""
    memory = f"{row['memory_gb']} GB (as printed)" if row["memory_gb"] else ""
    setting = row["setting"]
    return [label, f"{row['paper_row']}: {row['source']}", "", "", row["params_m"], "", time_ms, memory, setting]


def efficiency_table(run_dir: str | Path) -> ReportTable | None:
    """The run's efficiency table (None when the run has no efficiency.csv): per method its measured rows (one per
    LR size), then the rows the papers print for it."""
    path = Path(run_dir) / EFFICIENCY_FILE
    if not path.is_file():
        return None
    from reports.paper_tables import paper_label

    measured = read_efficiency(path)
    papers = pd.read_csv(PAPER_EFFICIENCY, dtype=str, keep_default_na=False)
    rows, flags = [], set()
    for method in dict.fromkeys(measured[COL_METHOD]):
        mine = measured[measured[COL_METHOD] == method]
        method_flags = set().union(*(split_flags(f) for f in mine[COL_FLAGS]))
        flags |= method_flags
        label = marked(paper_label(method), method_flags)
        rows += [_measured_row(r, label) for _, r in mine.iterrows()]
        rows += [_paper_row(r, label) for _, r in papers[papers[COL_METHOD] == method].iterrows()]
    values = pd.DataFrame(rows, columns=list(HEADERS))
    text = (
        "Parameters of every network a method runs; FLOPs of one call counted by torch "
        "(`torch.utils.flop_counter`: matrix products, convolutions, attention; a multiply-add is 2 FLOPs); latency "
        "the median of the timed calls after a warm-up; peak memory above what was in use before the calls (CUDA: "
        "allocated tensors; CPU: resident set of a fresh process). Each size was measured as named: on CPU the run "
        "measures a smaller frame than the papers' (`benchmarks.run --efficiency`). The papers' rows are their "
        "numbers as printed, on their hardware and inputs (setting in the note), not comparable to ours in time."
    )
    return ReportTable(
        key="efficiency",
        title="Efficiency: parameters, FLOPs, latency and peak memory per method",
        values=values,
        notes=flag_notes(flags),
        text=text,
        index=False,
    )
