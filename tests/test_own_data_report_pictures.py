"""A significance picture per data set and task, and HTML tables that fit the page."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_reports_formats import _make_run

from reports.build import build_reports
from sr.vocab import CLASS_ALL, COL_DEGRADATION, RESULT_COLUMNS

# rows without the degradation column: read as bicubic, like a results.csv of older runs
OLD_COLUMNS = [c for c in RESULT_COLUMNS if c != COL_DEGRADATION]

CHROMIUM = Path("/usr/bin/chromium")


def test_significance_pictures_per_data_set_and_task_in_md_and_html(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    out = build_reports(_make_run(run), run / "report", reference="bicubic")
    sig = pd.read_csv(out / "significance.csv")
    overall = sig[sig["class"] == CLASS_ALL]
    md = (out / "report.md").read_text(encoding="utf-8")
    for (dataset, task), block in overall.groupby(["dataset", "task"]):
        png, svg = out / f"significance_{dataset}_{task}.png", out / f"significance_{dataset}_{task}.svg"
        assert png.stat().st_size > 1000 and f"]({png.name})" in md
        text = svg.read_text(encoding="utf-8")
        for row in block.itertuples():  # every overall difference is a cell, marked where significant
            cell = f"{row.delta:+.3g}" + ("*" if row.significant else "")
            assert f">{cell}<" in text, cell
    assert (overall["significant"]).any() and (~overall["significant"]).any()  # both kinds were drawn
    page = (out / "paper" / "report.html").read_text(encoding="utf-8")
    assert "Significance (ds, quality)" in page and page.count("data:image/png;base64,") >= 2


def _wide_run(run: Path) -> Path:
    """Twelve metrics on two data sets (24 interval columns) and a long error message: wider than a 1280 px page."""
    rows = []
    for dataset in ("set_a", "set_b"):
        for method in ("bicubic", "nearest", "lanczos", "hr"):
            for k in range(12):
                v = 10.0 + k
                rows.append(["s", dataset, method, "quality", f"metric_{k}", "all", v, 4, v - 1, v + 1, "", ""])
    rows.append(["s", "set_a", "x", "sr", "unavailable", "all", np.nan, 0, np.nan, np.nan, "", "weights " * 60])
    pd.DataFrame(rows, columns=OLD_COLUMNS).to_csv(run / "results.csv", index=False)
    return run / "results.csv"


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless browser check needs /usr/bin/chromium (apt-get install -y chromium)"
)
def test_wide_tables_fit_the_page_in_headless_chromium(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    out = build_reports(_wide_run(run), run / "report")
    page = (out / "paper" / "report.html").resolve()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--virtual-time-budget=5000"]
    proc = subprocess.run(
        [str(CHROMIUM), *flags, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", "--dump-dom"]
        + [page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-fits="yes"' in proc.stdout, proc.stdout[:500]


def test_every_figure_module_draws_names_as_plain_text(monkeypatch):
    """Each module that draws names from the data switches off mathtext itself when imported
    (reports.escape.plain_text_figures), not only when another module that does was imported first."""
    import importlib

    import matplotlib

    for name in ("reports.significance_figure", "reports.radar"):
        monkeypatch.setitem(matplotlib.rcParams, "text.parse_math", True)
        importlib.reload(importlib.import_module(name))
        assert matplotlib.rcParams["text.parse_math"] is False, name
