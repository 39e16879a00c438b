"""One table model for every report format: a table is built once and rendered to markdown, html, LaTeX and CSV,
so its title, cells and notes read the same in report.md, the per-table files and report.html.

:class:`ReportTable` holds the numbers (or text) of a table, their 95 % intervals, the significance-gated best /
second-best marks and the footnotes (flag marks, legends). The renderers :func:`markdown_table`,
:func:`html_table` and :func:`latex_table` take text cells in their format; the paper tables
(``reports.paper_tables``) use them too. Titles, paragraphs and notes are markdown inline text (```code```,
``**bold**``, ``<u>underline</u>``), turned into html / LaTeX by :func:`inline_html` / :func:`inline_tex`.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path

import pandas as pd

from reports.escape import csv_frame, file_stem, from_md, md_text
from reports.tables import tex_marks, tex_text

#: how a best / second-best cell is written in each format (second best: italic, as the legend says)
MARK_STYLES = {
    "md": ("**{}**", "_{}_"),
    "html": ("<b>{}</b>", "<i>{}</i>"),
    "tex": ("\\textbf{{{}}}", "\\textit{{{}}}"),
}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _escape(text: str, style: str) -> str:
    """Text as a cell of ``style``: html-escaped, LaTeX-escaped or markdown-escaped (:mod:`reports.escape`)."""
    return html.escape(text) if style == "html" else tex_text(text) if style == "tex" else md_text(text)


@dataclass
class ReportTable:
    """One table of a report.

    ``values``: rows = row labels (a method with its flags' marks), columns = names or (data set, name) pairs;
    numbers or text. ``low`` / ``high``: the 95 % interval bound of each number (same labels; NaN: none).
    ``marks``: {column: {row label: "best" | "second"}}. ``files``: written as ``<key>.{csv,md,tex}``
    (False where the CSV is written elsewhere in full, e.g. significance.csv). ``empty``: the sentence shown
    instead of a table without rows.
    """

    key: str
    title: str
    values: pd.DataFrame
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None
    marks: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    text: str = ""
    number_format: str = ".4f"
    index: bool = True
    files: bool = True
    empty: str = ""

    def _bound(self, bounds: pd.DataFrame | None, row, col) -> float:
        if bounds is None or row not in bounds.index or col not in bounds.columns:
            return math.nan
        return bounds.at[row, col]

    def cell(self, row, col, style: str) -> str:
        """``value [low, high]`` (the interval where there is one), the value wrapped in ``style``'s mark."""
        v = self.values.at[row, col]
        if _missing(v):
            return ""
        if not isinstance(v, Number) or isinstance(v, bool):
            return _escape(str(v), style)
        if not isinstance(v, float):
            return str(v)
        text = format(v, self.number_format)
        mark = self.marks.get(col, {}).get(row)
        if mark:
            text = MARK_STYLES[style][0 if mark == "best" else 1].format(text)
        lo, hi = self._bound(self.low, row, col), self._bound(self.high, row, col)
        if not (_missing(lo) or _missing(hi)):
            text += f" [{lo:{self.number_format}}, {hi:{self.number_format}}]"
        return text

    def cells(self, style: str) -> pd.DataFrame:
        """The text of every cell in ``style`` (md, html or tex)."""
        return pd.DataFrame(
            [[self.cell(row, col, style) for col in self.values.columns] for row in self.values.index],
            index=self.values.index,
            columns=self.values.columns,
        )

    def markdown(self, level: int = 2) -> str:
        return markdown_table(self.title, self.cells("md"), self.notes, self.text, self.index, self.empty, level)

    def html(self, level: int = 3) -> str:
        return html_table(self.title, self.cells("html"), self.notes, self.text, self.index, self.empty, level)

    def latex(self) -> str:
        return latex_table(self.title, self.key, self.cells("tex"), self.notes, self.index)

    def write(self, folder: str | Path) -> list[Path]:
        """``<key>.csv`` (the numbers, row labels with their marks), ``<key>.md`` and ``<key>.tex``."""
        stem = Path(folder) / file_stem(self.key)  # a key built from a task's name stays a name in the folder
        stem.parent.mkdir(parents=True, exist_ok=True)
        paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
        csv_frame(self.values).to_csv(paths[0], float_format="%.4f", index=self.index)
        paths[1].write_text(self.markdown(), encoding="utf-8")
        paths[2].write_text(self.latex(), encoding="utf-8")
        return paths


def _header(column) -> str:
    """A column's one-line name: the parts of a (data set, name) pair joined by a space."""
    return " ".join(map(str, column)) if isinstance(column, tuple) else str(column)


def markdown_table(
    title: str,
    cells: pd.DataFrame,
    notes=(),
    text: str = "",
    index: bool = True,
    empty: str = "",
    level: int = 2,
) -> str:
    """``## title``, the paragraph, the table (cell texts exactly as given) and one bullet per note."""
    lines = [f"{'#' * level} {title}", ""] + ([text, ""] if text else [])
    if len(cells):
        align = ["right" if _numbers(cells.iloc[:, i]) else "left" for i in range(cells.shape[1])]
        flat = cells.set_axis([_escape(_header(c), "md") for c in cells.columns], axis=1)
        flat.index = pd.Index([_escape(str(i), "md") for i in flat.index], name=cells.index.name)
        colalign = (["left"] if index else []) + align
        lines += [flat.to_markdown(index=index, disable_numparse=True, colalign=colalign), ""]
    elif empty:
        lines += [empty, ""]
    return "\n".join(lines + [f"* {n}" for n in notes] + ([""] if notes else []))


_NUMBER = re.compile(r"(\*\*|_|<u>)?[-+]?\d")


def _numbers(column: pd.Series) -> bool:
    """Whether a column of cell texts holds numbers (possibly marked; blank and "—" cells aside): right-aligned."""
    texts = [t for t in column if t not in ("", "—")]
    return bool(texts) and all(_NUMBER.match(t) for t in texts)


def html_table(
    title: str,
    cells: pd.DataFrame,
    notes=(),
    text: str = "",
    index: bool = True,
    empty: str = "",
    level: int = 3,
    row_class: dict | None = None,
    header_class: dict | None = None,
) -> str:
    """``<hN>title</hN>``, the paragraph, a ``<table>`` (a (data set, name) header becomes two header rows,
    the data set spanning its columns) and the notes as a list. ``row_class``: {row label: css class};
    ``header_class``: {column name (its last part): css class}."""
    parts = [f"<h{level}>{inline_html(title)}</h{level}>"] + ([f"<p>{inline_html(text)}</p>"] if text else [])
    if len(cells):
        parts.append(_html_grid(cells, index, row_class or {}, header_class or {}))
    elif empty:
        parts.append(f"<p>{inline_html(empty)}</p>")
    if notes:
        parts.append("<ul class=notes>" + "".join(f"<li>{inline_html(n)}</li>" for n in notes) + "</ul>")
    return "".join(parts)


def _th(text, css: dict) -> str:
    attr = f' class="{css[text]}"' if text in css else ""
    return f"<th{attr}>{html.escape(str(text))}</th>"


def _html_grid(cells: pd.DataFrame, index: bool, row_class: dict, header_class: dict) -> str:
    pairs = isinstance(cells.columns, pd.MultiIndex)
    corner = html.escape(str(cells.index.name or "")) if index else ""
    if pairs:
        groups: list[list] = []
        for top, _ in cells.columns:
            if groups and groups[-1][0] == top:
                groups[-1][1] += 1
            else:
                groups.append([top, 1])
        head = "".join(f'<th colspan="{n}">{html.escape(str(top))}</th>' for top, n in groups)
        rows = [(f"<th rowspan=2>{corner}</th>" if index else "") + head]
        rows.append("".join(_th(c[-1], header_class) for c in cells.columns))
    else:
        rows = [(f"<th>{corner}</th>" if index else "") + "".join(_th(c, header_class) for c in cells.columns)]
    body = []
    for label, row in cells.iterrows():
        css = f' class="{row_class[label]}"' if label in row_class else ""
        first = f"<th>{html.escape(str(label))}</th>" if index else ""
        body.append(f"<tr{css}>{first}" + "".join(f"<td>{v}</td>" for v in row) + "</tr>")
    head_html = "".join(f"<tr>{r}</tr>" for r in rows)
    return f"<table><thead>{head_html}</thead><tbody>{''.join(body)}</tbody></table>"


def latex_table(title: str, key: str, cells: pd.DataFrame, notes=(), index: bool = True) -> str:
    """A LaTeX ``table`` (caption = title, label ``tab:<key>``; cells as given) followed by the notes."""
    frame = cells.copy()
    if index:
        frame.index = [tex_text(i) for i in frame.index]
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = pd.MultiIndex.from_tuples([tuple(tex_text(p) for p in c) for c in frame.columns])
    else:
        frame.columns = [tex_text(c) for c in frame.columns]
    tex = frame.to_latex(
        escape=False,
        index=index,
        multicolumn=True,
        multicolumn_format="c",
        caption=inline_tex(title),
        label=f"tab:{file_stem(key)}",
    )
    return tex_marks(tex) + "".join(f"\n{inline_tex(n)}\n" for n in notes)


def inline_html(text: str) -> str:
    """Markdown inline text as html: escaped, ```x``` -> <code>, ``**x**`` -> <b>; ``<u>`` kept; a name escaped by
    ``md_text`` is its literal characters (``reports.escape.from_md``)."""
    return from_md(text, _markup_html, html.escape)


def _markup_html(text: str) -> str:
    text = html.escape(text).replace("&lt;u&gt;", "<u>").replace("&lt;/u&gt;", "</u>")
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def inline_tex(text: str) -> str:
    """Markdown inline text as LaTeX: escaped, ```x``` -> \\texttt, ``**x**`` -> \\textbf, ``<u>x</u>`` ->
    \\underline; flag marks in their LaTeX form; a name escaped by ``md_text`` is its literal characters."""
    return from_md(text, _markup_tex, tex_text)


def _markup_tex(text: str) -> str:
    text = tex_text(re.sub(r"<u>(.+?)</u>", "\x01\\1\x02", text))
    text = text.replace("\x01", "\\underline{").replace("\x02", "}")
    text = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", text)
    return re.sub(r"`(.+?)`", r"\\texttt{\1}", text)
