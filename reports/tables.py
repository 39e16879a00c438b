"""Pivots of the long-format results table into the tables a reader wants."""
from __future__ import annotations

import pandas as pd

from sr.errors import UserError
from sr.vocab import COL_CLASS, COL_ERROR, COL_FLAGS, COL_VALUE, KEY_COLUMNS

RANDOM_MARK = "†"  # marks numbers made with random weights (see the table notes)


def load_results(path) -> pd.DataFrame:
    """A results.csv of benchmarks.run; a file that is not one is a UserError naming it and what is wrong."""
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""],
                         dtype={COL_FLAGS: str, COL_ERROR: str, COL_CLASS: str})
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError / EmptyDataError are ValueErrors
        raise UserError(f"{path} is not a results CSV: {str(exc).strip().splitlines()[0]}") from None
    missing = [c for c in (*KEY_COLUMNS, COL_VALUE) if c not in df.columns]
    if missing:
        raise UserError(f"{path} is not a results CSV of benchmarks.run: it lacks the column(s) {', '.join(missing)}")
    for column in (COL_FLAGS, COL_ERROR):
        df[column] = df[column].fillna("") if column in df.columns else ""
    df[COL_VALUE] = pd.to_numeric(df[COL_VALUE], errors="coerce")
    return df


def method_label(method: str, flags: set[str]) -> str:
    return f"{method} {RANDOM_MARK}" if "random_weights" in flags else method


def _labels(df: pd.DataFrame) -> pd.Series:
    flags = df.groupby("method")["flags"].apply(lambda s: set(";".join(s).split(";")) - {""})
    return df["method"].map(lambda m: method_label(m, flags.get(m, set())))


def quality_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: method; columns: (data set, metric); overall values only."""
    q = df[(df.task == "quality") & (df["class"] == "all") & df.value.notna()].copy()
    if q.empty:
        return pd.DataFrame()
    q["label"] = _labels(q)
    return q.pivot_table(index="label", columns=["dataset", "metric"], values="value", aggfunc="first")


def per_class_table(df: pd.DataFrame, task: str, metric: str) -> pd.DataFrame:
    """Rows: method; columns: (data set, class) for one task metric (e.g. detection mAP50-95)."""
    t = df[(df.task == task) & (df.metric == metric) & df.value.notna()].copy()
    if t.empty:
        return pd.DataFrame()
    t["label"] = _labels(t)
    return t.pivot_table(index="label", columns=["dataset", "class"], values="value", aggfunc="first")


def problems_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every row that carries an error: unavailable methods, unreadable samples, missing weights."""
    p = df[df.error != ""][["dataset", "method", "task", "metric", "class", "error"]]
    return p.drop_duplicates().reset_index(drop=True)


def write_table(table: pd.DataFrame, stem, float_format: str = "%.4f") -> list:
    """Write ``table`` as markdown, CSV and LaTeX next to ``stem``; returns the paths."""
    from pathlib import Path

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    table.to_csv(paths[0], float_format=float_format)
    paths[1].write_text(table.to_markdown(floatfmt=float_format.strip("%")) + "\n")
    paths[2].write_text(table.to_latex(float_format=lambda v: float_format % v, na_rep="--"))
    return paths
