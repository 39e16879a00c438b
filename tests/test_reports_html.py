"""The self-contained HTML report and the qualitative grid, built from a results.csv the test makes (plus SR
images in the run's ``sr_outputs`` index); the report is opened in headless Chromium when it is installed
(``apt-get install -y chromium``), which must load every image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_reports_paper import make_results

from reports.paper import build_paper_report
from sr.vocab import FLAG_NOTES, FLAG_RANDOM_WEIGHTS

CHROMIUM = Path("/usr/bin/chromium")


def make_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "sr_outputs").mkdir(parents=True)
    results = make_results(run / "results.csv")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (128, 160), dtype=np.uint8)
    for m in ("hr", "bicubic", "difiisr", "esrgan"):
        lines = ["dataset,method,id,path"]
        for frame in ("00001", "00002"):
            rel = Path("cache") / "sr" / m / "ds" / f"{frame}__x.png"
            (run / rel).parent.mkdir(parents=True, exist_ok=True)
            noisy = np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(run / rel)
            lines.append(f"m3fd_set5,{m},{frame},{rel.as_posix()}")
        (run / "sr_outputs" / f"m3fd_set5__{m}.csv").write_text("\n".join(lines) + "\n")
    (run / "run.json").write_text('{"suite": "paper", "seed": 0, "versions": {"torch": "x"}}')
    return results


def test_html_report_is_self_contained(tmp_path):
    results = make_run(tmp_path)
    out = build_paper_report(results, tmp_path / "paper")
    fig3 = sorted((out / "figures").glob("fig3_m3fd_set5_*.png"))
    assert [p.name for p in fig3] == ["fig3_m3fd_set5_00001.png"]
    assert (out / "figures" / "fig3_m3fd_set5_00001.svg").is_file()
    page = (out / "report.html").read_text()
    assert "src='http" not in page and 'src="http' not in page and "href=" not in page
    srcs = re.findall(r"<img src='([^']*)'", page)
    pictures = len(list((out / "figures").glob("significance_*.png")))  # one per data set and task
    assert pictures and len(srcs) == 3 + pictures  # fig6 x2 + fig3 + the significance pictures
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for heading in (
        "Table 1.",
        "Table 2.",
        "Table 3.",
        "Table 4.",
        "Supplementary Table 1.",
        "Supplementary Table 2.",
        "Supplementary Table 3.",
    ):
        assert heading in page
    assert "<th>paper</th>" in page or 'class="paper"' in page
    assert "<b>0.6144</b>" in page and FLAG_NOTES[FLAG_RANDOM_WEIGHTS] in page and 'class="random"' in page
    assert "&quot;seed&quot;: 0" in page and "weights missing" in page
    assert "Figures 4/5" in page
    assert "<code>significance.csv</code>" in page and (out / "significance.csv").is_file()  # named, and there


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless browser check needs /usr/bin/chromium (apt-get install -y chromium)"
)
def test_html_report_renders_in_headless_chromium(tmp_path):
    results = make_run(tmp_path)
    out = build_paper_report(results, tmp_path / "paper")
    page = (out / "report.html").resolve()
    shot = out / "screenshot.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=5000",
    ]

    def chromium(*extra: str) -> str:
        profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
        proc = subprocess.run(
            [str(CHROMIUM), *flags, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    dom = chromium("--dump-dom")
    images = 3 + len(list((out / "figures").glob("significance_*.png")))  # fig6 x2 + fig3 + significance pictures
    assert f'data-images="images-ok:{images}"' in dom, re.findall(r"data-images=\"[^\"]*\"", dom)
    assert f"<title>images-ok:{images}</title>" in dom
    chromium(f"--screenshot={shot}", "--window-size=1280,2000")
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        arr = np.asarray(im.convert("L"))
    assert arr.std() > 5  # not a blank page
    if os.environ.get("IRSR_REPORT_SCREENSHOT"):  # keep a copy to look at
        shutil.copy(shot, os.environ["IRSR_REPORT_SCREENSHOT"])
