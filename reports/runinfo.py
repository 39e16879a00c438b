"""Run metadata for the reports: ``run.json`` next to a results.csv (written by ``benchmarks.run.write_results``).

``load_run_json(run_dir)`` -> dict or None; ``summary_rows(meta, df)`` -> [(key, value)] (suite, seed, device,
python, versions, tasks with their weights sha256, flags found in the results); ``weights_rows(meta)`` ->
[(method, role, sha256)] per method weights file (``run.json["methods"]``); ``info_tables(results_csv, df)`` makes
the ``Run`` section's tables of both, which report.md, paper.md (``markdown``) and report.html render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reports.escape import md_text
from reports.report_table import ReportTable
from reports.tables import method_flags
from sr.errors import ConfigError
from sr.safeparse import read_json_file
from sr.vocab import COL_DATASET, COL_FLAGS, COL_METHOD, COL_SUITE


def load_run_json(run_dir: str | Path) -> dict[str, Any] | None:
    """The run.json beside a results.csv (None when there is none); a ValueError when it cannot be read, is not
    JSON or breaks the bounds of ``sr.safeparse`` (a results folder handed to the report may be anyone's)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return None
    try:
        meta = read_json_file(path, "run.json")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return meta if isinstance(meta, dict) else None


def run_meta(run_dir: str | Path) -> dict[str, Any] | None:
    """``load_run_json``, with an unreadable file read as absent (for sections that only use it if there)."""
    try:
        return load_run_json(run_dir)
    except ValueError:
        return None


def result_flags(df: pd.DataFrame) -> dict[str, str]:
    """method -> the flags its result rows carry (e.g. random_weights)."""
    if df is None or COL_FLAGS not in df:
        return {}
    return {m: ", ".join(sorted(flags)) for m, flags in method_flags(df).items() if flags}


def _task_weights(ident: dict[str, Any]) -> str:
    if "error" in ident:
        return f"error: {ident['error']}"
    w = ident.get("weights")
    if isinstance(w, dict):
        return w.get("sha256") or ", ".join(f"{k}={v}" for k, v in w.items())
    return str(ident.get("weights_sha256", "?"))


def summary_rows(meta: dict[str, Any] | None, df: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    meta = meta or {}
    for key in ("suite", "seed", "device", "random_weights", "limit", "python", "seconds"):
        if key in meta:
            rows.append((key, str(meta[key])))
    versions = meta.get("versions") or {}
    if versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    idents = meta.get("task_identities") or {}
    for task, config in (meta.get("tasks") or {}).items():
        ident = idents.get(task)
        rows.append((f"task {task}", f"{config}" + (f" (weights sha256 {_task_weights(ident)})" if ident else "")))
    flags = result_flags(df) if df is not None else {}
    if flags:
        rows.append(("flags", "; ".join(f"{m}: {f}" for m, f in flags.items())))
    return rows


def weights_rows(meta: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(method, role, sha256) per weights file of each method; (method, "-", "no weights") for weight-free ones."""
    out = []
    for method, ident in sorted(((meta or {}).get("methods") or {}).items()):
        weights = (ident or {}).get("weights") or {}
        flags = ", ".join((ident or {}).get("flags") or ())
        if not weights:
            out.append((method, "-", "no weights" + (f" [{flags}]" if flags else "")))
        for role, sha in sorted(weights.items()):
            out.append((method, str(role), str(sha) + (f" [{flags}]" if flags else "")))
    return out


def info_tables(results_csv: str | Path, df: pd.DataFrame) -> list[ReportTable]:
    """The ``Run`` section's tables, built once for report.md, paper.md and report.html: what the results hold
    and ``summary_rows`` (a paragraph says when run.json is missing or unreadable), then ``weights_rows``."""
    results_csv = Path(results_csv)
    rows = [
        ("results", results_csv.name),
        ("rows", str(len(df))),
        ("suites", ", ".join(sorted(df[COL_SUITE].astype(str).unique()))),
        ("data sets", ", ".join(sorted(df[COL_DATASET].astype(str).unique()))),
        ("methods", ", ".join(sorted(df[COL_METHOD].astype(str).unique()))),
    ]
    try:
        meta = load_run_json(results_csv.parent)
        text = "" if meta else "No run.json next to the results (versions, seed and weights hashes unknown)."
    except ValueError as exc:
        meta, text = None, f"run.json unreadable: {md_text(exc)}"
    rows += summary_rows(meta, df)
    summary = pd.DataFrame({"value": [v for _, v in rows]}, index=pd.Index([k for k, _ in rows]))
    tables = [ReportTable("run", "Run", summary, text=text, files=False)]
    weights = weights_rows(meta)
    if weights:
        frame = pd.DataFrame(weights, columns=[COL_METHOD, "weights", "sha256"]).set_index(COL_METHOD)
        tables.append(ReportTable("method_weights", "Method weights (sha256)", frame, files=False))
    return tables


def markdown(results_csv: str | Path, df: pd.DataFrame) -> list[str]:
    """The ``## Run`` section of report.md and paper.md."""
    return [t.markdown(level=2 if i == 0 else 3) for i, t in enumerate(info_tables(results_csv, df))]
