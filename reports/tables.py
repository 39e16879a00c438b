"""Pivots of the long-format results table into the tables a reader wants.

Row flags (``sr.vocab``: random weights, scratch-trained task model, NIQE fallback parameters, ...) travel
into every table the same way: a row label carries the mark of each flag its numbers carry, and the table
(md, tex, html; csv keeps the marked labels) ends with one footnote per mark. ``flag_marks``, ``flag_notes``
and ``tex_marks`` are the one implementation every report uses; ``reports.report_table`` renders the tables.
"""

from __future__ import annotations

import pandas as pd

from reports import escape
from sr.errors import UserError
from sr.vocab import (
    CLASS_ALL,
    COL_CLASS,
    COL_DATASET,
    COL_DEGRADATION,
    COL_ERROR,
    COL_FLAGS,
    COL_METHOD,
    COL_METRIC,
    COL_TASK,
    COL_VALUE,
    DEGRADATION_DEFAULT,
    FLAG_CLASS_ABSENT_IN_TRAINING,
    FLAG_MARKS,
    FLAG_NOTES,
    FLAG_UNKNOWN_MARK,
    KEY_COLUMNS,
    join_flags,
    split_flags,
)

#: LaTeX for the other non-ASCII characters the tables and their notes use (a .tex file is plain ASCII, so it
#: compiles with pdflatex and no extra package)
TEX_SYMBOLS = {
    "Δ": "$\\Delta$",
    "Σ": "$\\Sigma$",
    "∇": "$\\nabla$",
    "→": "$\\rightarrow$",
    "−": "$-$",
    "—": "---",
    "–": "--",
    "±": "$\\pm$",
    "×": "$\\times$",
    "≤": "$\\leq$",
    "≥": "$\\geq$",
    "✓": "$\\surd$",
}
#: LaTeX for each mark (a .tex table holds no raw Unicode marks)
TEX_MARKS = {
    "†": "$\\dagger$",
    "‡": "$\\ddagger$",
    "§": "\\S{}",
    "¶": "\\P{}",
    "°": "$^\\circ$",
    "∅": "$\\emptyset$",
    "♮": "$\\natural$",
    "≠": "$\\neq$",
    "◊": "$\\lozenge$",
}


def load_results(path) -> pd.DataFrame:
    """A results.csv of benchmarks.run; a file that is not one is a UserError naming it and what is wrong."""
    try:
        df = pd.read_csv(
            path,
            keep_default_na=False,
            na_values=[""],
            dtype={COL_FLAGS: str, COL_ERROR: str, COL_CLASS: str, COL_DEGRADATION: str},
        )
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError / EmptyDataError are ValueErrors
        raise UserError(f"{path} is not a results CSV: {str(exc).strip().splitlines()[0]}") from None
    missing = [c for c in (*KEY_COLUMNS, COL_VALUE) if c not in df.columns and c != COL_DEGRADATION]
    if missing:
        raise UserError(f"{path} is not a results CSV of benchmarks.run: it lacks the column(s) {', '.join(missing)}")
    for column in (COL_FLAGS, COL_ERROR):
        df[column] = df[column].fillna("") if column in df.columns else ""
    fill_degradation(df)
    df[COL_VALUE] = pd.to_numeric(df[COL_VALUE], errors="coerce")
    return df


def fill_degradation(df: pd.DataFrame) -> pd.DataFrame:
    """Give rows without a degradation (a results.csv from before the degradation axis) the paper's bicubic, in
    place; returns ``df``."""
    df[COL_DEGRADATION] = (
        df[COL_DEGRADATION].fillna(DEGRADATION_DEFAULT) if COL_DEGRADATION in df else DEGRADATION_DEFAULT
    )
    df[COL_DEGRADATION] = df[COL_DEGRADATION].astype(str)
    return df


def default_degradation_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's bicubic degradation: what every table but the robustness report shows."""
    return df[df[COL_DEGRADATION] == DEGRADATION_DEFAULT]


def _ordered(flags) -> list[str]:
    """Known flags in FLAG_MARKS order, then unknown ones alphabetically."""
    known = [f for f in FLAG_MARKS if f in flags]
    return known + sorted(set(flags) - set(known))


def flag_marks(flags) -> str:
    """The marks of ``flags`` (e.g. ``"†"``, ``"†§"``; ``""`` for none); a flag missing from FLAG_MARKS gets ``*``."""
    return "".join(dict.fromkeys(FLAG_MARKS.get(f, FLAG_UNKNOWN_MARK) for f in _ordered(flags)))


def flag_notes(flags) -> list[str]:
    """One footnote per flag present, ``"<mark> <what it means>"``; an unknown flag is named as it is."""
    return [f"{FLAG_MARKS.get(f, FLAG_UNKNOWN_MARK)} {FLAG_NOTES.get(f, f'flagged {f!r}')}" for f in _ordered(flags)]


#: the sentence above the flags' notes at the top of a report (md and html)
FLAGS_LEAD = "Marks on a row: its numbers carry a caveat (the `flags` column of results.csv):"


def flags_in(df: pd.DataFrame) -> set[str]:
    """Every flag carried by a row of ``df``."""
    return set().union(*map(split_flags, df[COL_FLAGS])) if COL_FLAGS in df and len(df) else set()


def method_flags(df: pd.DataFrame) -> dict[str, set[str]]:
    """method -> the flags carried by its rows in ``df``."""
    return {str(m): flags_in(rows) for m, rows in df.groupby(COL_METHOD)}


def marked(label: str, flags) -> str:
    """``label`` followed by the marks of ``flags`` (unchanged when there are none)."""
    marks = flag_marks(flags)
    return f"{label} {marks}" if marks else label


def tex_text(text) -> str:
    """Plain ``text`` as LaTeX: special characters escaped (:func:`reports.escape.tex_text`), flag marks and other
    symbols in their LaTeX form."""
    return tex_marks(escape.tex_text(text))


def tex_marks(latex: str) -> str:
    """``latex`` with every flag mark and every other non-ASCII symbol of ``TEX_SYMBOLS`` in its LaTeX form."""
    for char, tex in TEX_SYMBOLS.items():
        latex = latex.replace(char, tex)
    for mark, tex in TEX_MARKS.items():
        latex = latex.replace(mark, tex)
    return latex


def _pivot(rows: pd.DataFrame, columns: list[str], values: str = COL_VALUE) -> pd.DataFrame:
    """Rows: method labels with their flags' marks; the flags shown are kept in ``attrs["flags"]`` for the notes."""
    if rows.empty or values not in rows:
        return pd.DataFrame()
    flags = method_flags(rows)
    rows = rows.assign(label=rows[COL_METHOD].map(lambda m: marked(str(m), flags.get(str(m), set()))))
    table = rows.pivot_table(index="label", columns=columns, values=values, aggfunc="first").rename_axis(COL_METHOD)
    table.attrs["flags"] = sorted(flags_in(rows))
    return table


def metric_order(metrics) -> list[str]:
    """Quality metrics ordered by kind (reference first, then no-reference), each kind in registry order;
    names the registry does not know come last."""
    from downstream.metrics import KIND_REFERENCE, metric_specs

    specs = metric_specs()
    rank = {name: (spec.kind != KIND_REFERENCE, i) for i, (name, spec) in enumerate(specs.items())}
    return sorted(dict.fromkeys(metrics), key=lambda m: rank.get(m, (True, len(specs))))


def quality_table(df: pd.DataFrame, values: str = COL_VALUE) -> pd.DataFrame:
    """Rows: method; columns: (data set, metric), metrics ordered by kind; overall values only.
    ``values``: the column shown (``value``, or an interval bound ``ci_low`` / ``ci_high``)."""
    table = _pivot(
        df[(df[COL_TASK] == "quality") & (df[COL_CLASS] == CLASS_ALL) & df[COL_VALUE].notna()],
        [COL_DATASET, COL_METRIC],
        values,
    )
    if table.empty:
        return table
    order = metric_order(table.columns.get_level_values(1))
    columns = [(d, m) for d in table.columns.get_level_values(0).unique() for m in order if (d, m) in table.columns]
    return table[columns]


def per_class_table(df: pd.DataFrame, task: str, metric: str, values: str = COL_VALUE) -> pd.DataFrame:
    """Rows: method; columns: (data set, class) for one task metric (e.g. detection mAP50-95).
    ``values``: the column shown (``value``, ``ci_low`` or ``ci_high``)."""
    rows = df[(df[COL_TASK] == task) & (df[COL_METRIC] == metric) & df[COL_VALUE].notna()]
    # a class absent from the task model's training split is a property of the column, not of the methods: its
    # mark goes on the class (``unmarked_class`` reads the class back), the methods' labels stay clean
    absent = {
        (d, c)
        for d, c, f in zip(rows[COL_DATASET], rows[COL_CLASS], rows[COL_FLAGS])
        if FLAG_CLASS_ABSENT_IN_TRAINING in split_flags(f)
    }
    if absent:
        kept = [join_flags(split_flags(f) - {FLAG_CLASS_ABSENT_IN_TRAINING}) for f in rows[COL_FLAGS]]
        rows = rows.assign(**{COL_FLAGS: kept})
    table = _pivot(rows, [COL_DATASET, COL_CLASS], values)
    if table.empty:
        return table
    # each data set's classes in the data set's own order (the order the task wrote its rows), not alphabetical
    order = list(dict.fromkeys(zip(rows[COL_DATASET], rows[COL_CLASS])))
    columns = [c for d in dict.fromkeys(table.columns.get_level_values(0)) for c in order if c[0] == d]
    attrs = dict(table.attrs)
    table = table.loc[:, [c for c in columns if c in table.columns]]
    if absent:
        table.columns = pd.MultiIndex.from_tuples(
            [(d, marked(str(c), {FLAG_CLASS_ABSENT_IN_TRAINING}) if (d, c) in absent else c) for d, c in table.columns]
        )
        attrs["flags"] = sorted({*attrs.get("flags", ()), FLAG_CLASS_ABSENT_IN_TRAINING})
    table.attrs.update(attrs)
    return table


def unmarked_class(column: str) -> str:
    """The class of a ``per_class_table`` column (without the mark of a class absent from training)."""
    return str(column).removesuffix(f" {FLAG_MARKS[FLAG_CLASS_ABSENT_IN_TRAINING]}")


def table_notes(table: pd.DataFrame) -> list[str]:
    """The footnotes of a table made by ``quality_table`` / ``per_class_table`` (one per flag shown)."""
    return flag_notes(table.attrs.get("flags", ()))


def problems_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every error: unavailable methods, unreadable samples, missing weights. One row per (data set, task, metric,
    class, error): a metric that cannot run (its weights are missing) is one row naming every method it cost."""
    columns = [COL_DATASET, COL_METHOD, COL_TASK, COL_METRIC, COL_CLASS, COL_ERROR]
    p = df[df[COL_ERROR] != ""][columns].drop_duplicates()
    keys = [COL_DATASET, COL_TASK, COL_METRIC, COL_CLASS, COL_ERROR]
    methods = p.groupby(keys, sort=False)[COL_METHOD].agg(lambda m: ", ".join(dict.fromkeys(m.astype(str))))
    return methods.reset_index()[columns] if len(p) else p.reset_index(drop=True)
