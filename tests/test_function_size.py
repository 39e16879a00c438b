"""Functions stay small enough to read: none over 80 lines in benchmarks/, downstream/ and reports/, and ruff's
complexity check (C901) at 15 for every file, with no file let off."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from conftest import REPO, project_sources

MAX_LINES = 80
CHECKED = ("benchmarks", "downstream", "reports")


def long_functions(paths: list[Path], limit: int = MAX_LINES) -> list[str]:
    """``path:line name (N lines)`` for every function or method (nested ones too) whose ``def`` to last line
    spans more than ``limit`` lines."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_over_80_lines_in_runner_downstream_reports():
    paths = [p for p in project_sources() if p.relative_to(REPO).parts[0] in CHECKED]
    assert {p.relative_to(REPO).parts[0] for p in paths} == set(CHECKED)  # the scan reads all three
    assert long_functions(paths) == []


def _function(name: str, body_lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines - 1))
    return f"{indent}def {name}():\n{body}{indent}    return 0\n"


def test_the_check_finds_a_planted_long_function(tmp_path):
    """81 lines (a top-level function, a method, a nested function) are found; 80 are not."""
    module = tmp_path / "planted.py"
    module.write_text(
        _function("fits", MAX_LINES - 1)  # def line + 80 - 1 body lines = 80 lines
        + _function("too_long", MAX_LINES)
        + "class Holder:\n"
        + _function("long_method", MAX_LINES, indent="    ")
        + "def outer():\n"
        + _function("long_inner", MAX_LINES, indent="    ")
        + "    return long_inner\n"
    )
    found = long_functions([module])
    assert sorted(f.split(" ")[1] for f in found) == ["long_inner", "long_method", "outer", "too_long"]
    assert f"{module}:{MAX_LINES + 1} too_long ({MAX_LINES + 1} lines)" in found
    assert not any(" fits " in f for f in found)


def test_complexity_check_is_on_for_every_file():
    """C901 at most 15 in the lint gate, and no per-file exception switches it off."""
    lint = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"] or "C901" in lint["select"]
    assert "C901" not in lint.get("ignore", []) and "C90" not in lint.get("ignore", [])
    assert lint["mccabe"]["max-complexity"] <= 15
    let_off = {f: codes for f, codes in lint.get("per-file-ignores", {}).items() if {"C90", "C901"} & set(codes)}
    assert let_off == {}
