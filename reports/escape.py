"""Escaping of text from the data (class, method, data-set and file names) for every output format, in one place.

Names come from the user's data set and are data, never markup: a class named ``<script>``, ``a|b``, a newline,
``=HYPERLINK(...)``, ``^^5cinput`` or ``$x^$`` must read as those characters in every report.

* :func:`md_text`: markdown (and the html a markdown viewer renders): ``& < >`` as entities, the characters that
  make tables, code or links (``\\ | ` [ ]``) backslash-escaped, line breaks and other control characters as
  spaces (``*`` and ``_`` are left as they are: at worst emphasis, and ``*`` is one of our own flag marks);
* :func:`tex_text`: LaTeX, all ten special characters (``& % $ # _ { } ~ ^ \\``) in their text form, control
  characters as spaces (``^^5c`` is then plain text: ``^`` no longer starts TeX's hex notation);
* :func:`xml_text`: the text of an SVG (XML) element or attribute: ``& < > " '`` as entities, control characters
  (and the few others XML cannot hold at all) as spaces;
* :func:`csv_cell`: a text cell of a CSV meant for spreadsheets (the report tables): a leading ``= + - @``, tab or
  carriage return is neutralised with a leading ``'`` so no formula runs. ``results.csv`` is the run's data, written
  as it is (documented in docs/security.md): open it as data, not in a spreadsheet that evaluates formulas;
* matplotlib: :func:`plain_text_figures` switches off mathtext for every figure (``text.parse_math``), so ``$`` in
  a name is a dollar sign, not a formula that fails to parse.

Titles, paragraphs and notes of the report tables are markdown inline text (``reports.report_table``): a name from
the data enters them through :func:`md_text` (or :func:`md_code`), and :func:`from_md` turns that text into another
format with each of ``md_text``'s escapes as the literal character it stands for. A link target built from a name
goes through :func:`md_link`, a file name built from a name through :func:`file_stem`.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from urllib.parse import quote

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_MARKUP = re.compile(r"([\\|`\[\]])")
_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_TEX_CHARS = re.compile("|".join(re.escape(c) for c in _TEX))
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
# what XML 1.0 cannot hold even as a character reference: C0 controls but tab/LF/CR, lone surrogates, U+FFFE/F
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def md_text(text) -> str:
    """``text`` as literal markdown inline text (see the module doc)."""
    text = _CONTROL.sub(" ", str(text))
    text = "".join(_MD_ENTITIES.get(c, c) for c in text)
    return _MD_MARKUP.sub(r"\\\1", text)


def md_code(text) -> str:
    """A name as a markdown code span (literal: ``< | * [`` are not markup there); control characters as spaces. A
    name holding a backtick (it would end the span) is :func:`md_text` instead, without the span."""
    text = _CONTROL.sub(" ", str(text))
    return md_text(text) if "`" in text else f"`{text}`"


def file_stem(text) -> str:
    """A name as (part of) a file name in a report folder: letters, digits, ``-`` and ``_`` kept, anything else
    (``/``, ``:``, ``.``, spaces, control characters) as ``_``: a name never makes a path that leaves the folder, a
    hidden file, or a suffix that ``Path.with_suffix`` would cut (``m3fd.v2`` and ``m3fd`` are two files). A name
    that had to change gets the first 8 hex digits of its sha256 too, so two names never share a file (``a/b`` and
    ``a:b``); a safe name is kept as it is."""
    text = str(text)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    return safe if safe == text and text else f"{safe}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def md_link(target) -> str:
    """A relative file path as a markdown link target: percent-encoded (``)``, spaces, ``<`` end no link)."""
    return quote(str(target), safe="/")


_MD_ESCAPED = re.compile(r"\\([\\|`\[\]])|&(amp|lt|gt);")
_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_HOLD, _END = "\U000f0000", "\U000f0001"  # private use: mark an escape's place while the markup is rendered
_HELD = re.compile(f"{_HOLD}(\\d+){_END}")
_PRIVATE = re.compile(f"[{_HOLD}{_END}]")


def from_md(text, markup: Callable[[str], str], literal: Callable[[str], str]) -> str:
    """Markdown inline text in another format: ``markup`` renders the text (its own escaping included) with each of
    :func:`md_text`'s escapes held aside, then each escaped character is put back through ``literal`` (so ``\\|`` is
    ``|`` and ``&lt;`` is ``<``, escaped for that format once, and never markup)."""
    found: list[str] = []

    def hold(m: re.Match) -> str:
        found.append(m.group(1) or _ENTITY_CHARS[m.group(2)])
        return f"{_HOLD}{len(found) - 1}{_END}"

    held = _MD_ESCAPED.sub(hold, _PRIVATE.sub(" ", str(text)))
    return _HELD.sub(lambda m: literal(found[int(m.group(1))]), markup(held))


def tex_text(text) -> str:
    """``text`` as literal LaTeX text (see the module doc); one pass, so an escape is never escaped again."""
    return _TEX_CHARS.sub(lambda m: _TEX[m.group()], _CONTROL.sub(" ", str(text)))


def xml_text(text) -> str:
    """``text`` as literal XML (SVG) text, fit for an element or a quoted attribute (see the module doc)."""
    return html.escape(_CONTROL.sub(" ", _NOT_XML.sub(" ", str(text))), quote=True)


def csv_cell(value):
    """A CSV cell for a spreadsheet: text with a formula lead gets a ``'`` in front; other values unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_LEAD):
        return "'" + value
    return value


def csv_frame(frame):
    """A copy of a DataFrame with every text cell, row label and column label through :func:`csv_cell`."""
    import pandas as pd

    out = frame.map(csv_cell) if hasattr(frame, "map") else frame.applymap(csv_cell)

    def labels(index):
        if isinstance(index, pd.MultiIndex):
            return pd.MultiIndex.from_tuples([tuple(csv_cell(p) for p in t) for t in index], names=index.names)
        return pd.Index([csv_cell(v) for v in index], name=index.name)

    out.index = labels(out.index)
    out.columns = labels(out.columns)
    return out


def plain_text_figures() -> None:
    """No mathtext in any figure: text from data is drawn as it is (``$x^$`` is not a formula)."""
    import matplotlib

    matplotlib.rcParams["text.parse_math"] = False
