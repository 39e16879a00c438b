"""The class column and its all-classes value are spelled through sr.vocab (COL_CLASS, CLASS_ALL) in
production code: a source scan for the literals that would re-spell them."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import project_sources

from sr.vocab import CLASS_ALL, COL_CLASS

REPO = Path(__file__).resolve().parents[1]


def _names_class(node: ast.AST) -> bool:
    """``node`` reads the class of a row: the name COL_CLASS, or a ``cls`` variable / attribute."""
    return any(
        (isinstance(n, ast.Name) and n.id in ("COL_CLASS", "cls")) or (isinstance(n, ast.Attribute) and n.attr == "cls")
        for n in ast.walk(node)
    )


def _offenders(source: str) -> list[str]:
    """Line and what of every re-spelled class name: the string "class", a comparison of a row's class with
    "all", a ``cls="all"`` argument or default."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value == COL_CLASS:
            out.append(f"{node.lineno}: {COL_CLASS!r} (COL_CLASS)")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Constant) and s.value == CLASS_ALL for s in sides) and any(
                map(_names_class, sides)
            ):
                out.append(f"{node.lineno}: class compared with {CLASS_ALL!r} (CLASS_ALL)")
        elif isinstance(node, ast.keyword) and node.arg == "cls":
            if isinstance(node.value, ast.Constant) and node.value.value == CLASS_ALL:
                out.append(f"{node.lineno}: cls={CLASS_ALL!r} (CLASS_ALL)")
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            pairs = [*zip(positional[len(positional) - len(node.defaults) :], node.defaults)]
            pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is not None]
            for arg, default in pairs:
                if arg.arg == "cls" and isinstance(default, ast.Constant) and default.value == CLASS_ALL:
                    out.append(f"{default.lineno}: cls default {CLASS_ALL!r} (CLASS_ALL)")
    return out


def test_the_scan_finds_each_re_spelling():
    src = 'a = df["class"]\nb = rows[COL_CLASS] != "all"\nc = r.cls == "all"\nMetricRow("m", 1.0, cls="all")\n'
    src += 'def add(task, cls: str = "all"):\n    pass\nok = split != "all"\nalso_ok = df[COL_CLASS] == CLASS_ALL\n'
    assert sorted(int(line.split(":")[0]) for line in _offenders(src)) == [1, 2, 3, 4, 5]


def test_production_code_spells_the_class_column_through_vocab():
    offenders = []
    for path in project_sources():
        if path == REPO / "sr" / "vocab.py":
            continue
        offenders += [f"{path.relative_to(REPO)}:{o}" for o in _offenders(path.read_text())]
    assert offenders == []
