"""Imports flow one way: benchmarks -> reports -> downstream -> sr; inside sr, the methods and the trainer share
model building (sr.builders) below both, and the weights command sits above the registry it serves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _imports(source: str, package: str) -> set[str]:
    """Every module a source of ``package`` imports (top level and inside functions; relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def _violations(files: str, forbidden: tuple[str, ...]) -> list[str]:
    hits = []
    for path in sorted(REPO.glob(files)):
        package = ".".join(path.relative_to(REPO).parts[:-1])
        for module in _imports(path.read_text(), package):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                hits.append(f"{path.relative_to(REPO)} imports {module}")
    return hits


@pytest.mark.parametrize(
    ("files", "forbidden"),
    [
        ("sr/**/*.py", ("downstream", "benchmarks", "reports")),
        ("downstream/**/*.py", ("benchmarks", "reports")),
        ("reports/**/*.py", ("benchmarks",)),
        ("sr/methods/**/*.py", ("sr.train",)),
        ("sr/builders.py", ("sr.train", "sr.methods.resshift")),
        ("sr/sampler.py", ("sr.train",)),
        ("sr/weights/__init__.py", ("sr.weights.cli", "sr.weights.__main__")),
    ],
)
def test_no_import_against_the_layering(files, forbidden):
    assert not _violations(files, forbidden)


def test_the_check_sees_function_level_and_relative_imports():
    source = "import os\ndef f():\n    from downstream.datasets import load_dataset\n    from ..train import model\n"
    assert _imports(source, "sr.methods") >= {"os", "downstream.datasets", "sr.train", "sr.train.model"}


def test_no_tracker_issue_numbers_in_code_or_tests():
    """Code and tests say what they check, not which ticket of an outside tracker asked for it."""
    import re

    pattern = re.compile(r"\b[Ii]ssue" + r"s? \d")
    hits = [
        f"{path.relative_to(REPO)}:{n}"
        for top in ("sr", "downstream", "benchmarks", "reports", "tests")
        for path in sorted((REPO / top).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits


def test_the_runner_imports_none_of_the_speed_tools():
    """benchmarks/speed/ (perf, timing, gpu_check, ...) imports the runner, never the reverse: importing the runner's
    modules (and what they import) loads no benchmarks.speed module."""
    import subprocess
    import sys

    runner = ["benchmarks.run", "benchmarks.runner", "benchmarks.ray_executor", "benchmarks.regress"]
    code = f"import sys\nfor m in {runner!r}: __import__(m)\nprint([m for m in sys.modules if 'speed' in m.split('.')])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
