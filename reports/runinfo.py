"""Run metadata for the reports: ``run.json`` next to a results.csv (written by ``benchmarks.run.write_results``).

``load_run_json(run_dir)`` -> dict or None; ``summary_rows(meta, df)`` -> [(key, value)] (suite, seed, device,
python, versions, tasks with their weights sha256, flags found in the results); ``weights_rows(meta)`` ->
[(method, role, sha256)] per method weights file (``run.json["methods"]``); ``markdown(meta, df)`` renders both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def load_run_json(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    return meta if isinstance(meta, dict) else None


def run_meta(run_dir: str | Path) -> dict[str, Any] | None:
    """``load_run_json``, with an unreadable file read as absent (for sections that only use it if there)."""
    try:
        return load_run_json(run_dir)
    except ValueError:
        return None


def result_flags(df: pd.DataFrame) -> dict[str, str]:
    """method -> the flags its result rows carry (e.g. random_weights)."""
    if df is None or "flags" not in df:
        return {}
    flagged = df[df["flags"].astype(str) != ""].groupby("method")["flags"]
    return {m: ", ".join(sorted(set(";".join(s.astype(str)).split(";")) - {""})) for m, s in flagged}


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


def markdown(meta: dict[str, Any] | None, df: pd.DataFrame | None = None) -> list[str]:
    """Lines of a ``## Run`` section (markdown)."""
    lines = ["## Run", ""]
    if meta is None:
        return lines + ["No run.json next to the results (versions, seed and weights hashes unknown).", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in summary_rows(meta, df)]
    wr = weights_rows(meta)
    if wr:
        lines += ["", "Method weights (sha256):", "", "| method | weights | sha256 |", "|---|---|---|"]
        lines += [f"| {m} | {r} | `{s}` |" for m, r, s in wr]
    return lines + [""]
