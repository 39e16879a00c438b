"""The attack / mistake matrix (tests/security_matrix.py) runs every case as a user would and finds no
traceback, hang, wrong result or executed payload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_security_matrix_has_no_failures(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "security_matrix.py"), "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    rows = [line for line in (tmp_path / "security_matrix.md").read_text().splitlines() if line.startswith("| **all**")]
    cases, ok, *bad = (int(v) for v in rows[0].strip("| ").split(" | ")[1:])
    assert cases >= 40 and ok == cases and bad == [0, 0, 0, 0]
