"""Tests that read the project's source (layering, one CLI convention, one device rule, vocab spellings) read the
project's own modules (``conftest.project_sources``: the packages pyproject.toml lists), never the whole checkout:
a virtual environment made inside it (``python -m venv .venv``) holds thousands of foreign modules."""

from __future__ import annotations

import re
import shutil

from conftest import REPO, project_sources

OFFENDING = 'import argparse\np = argparse.ArgumentParser()\nd = "cuda" if torch.cuda.is_available() else "cpu"\n'


def test_a_virtual_environment_inside_the_checkout_is_not_scanned(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("sr", "sr/methods", "benchmarks"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "sr" / "methods" / "mine.py").write_text("x = 1\n")
    for stray in (".venv/lib/python3.11/site-packages/foreign/cli.py", "build/lib/sr/old.py", "notes/scratch.py"):
        (tmp_path / stray).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stray).write_text(OFFENDING)
    found = {p.relative_to(tmp_path).as_posix() for p in project_sources(tmp_path)}
    assert found == {"sr/__init__.py", "sr/methods/__init__.py", "sr/methods/mine.py", "benchmarks/__init__.py"}


def test_the_real_scan_covers_every_package_module_and_nothing_else():
    found = project_sources()
    assert REPO / "sr" / "cli.py" in found and REPO / "benchmarks" / "runner.py" in found
    tops = {p.relative_to(REPO).parts[0] for p in found}
    assert tops == {"sr", "downstream", "benchmarks", "reports"}


def test_no_test_globs_the_whole_checkout():
    whole_tree = re.compile(r"""(REPO|PROJECT_ROOT|ROOT)\.r?glob\(\s*["'](\*/)?\*\*""")
    offenders = [p.name for p in sorted((REPO / "tests").glob("*.py")) if whole_tree.search(p.read_text())]
    assert offenders == []
