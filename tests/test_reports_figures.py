"""Figures 4 and 5 (detections / segmentation overlays on the same crop for every method) and the run metadata,
from a tiny demo run the test makes: the demo suite records its detector and segmenter in run.json."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from benchmarks.run import main as run_main
from reports.paper import main as paper_main
from reports.qualitative import cluster_crop


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert run_main(["--methods", "hr,bicubic", "--limit", "2", "--out", str(run), "--quiet", "--no-report"]) == 0
    return run


def test_run_json_records_tasks_and_method_identities(demo_run):
    meta = json.loads((demo_run / "run.json").read_text())
    assert meta["tasks"] == {"detection": "detection_demo", "segmentation": "segmentation_demo"}
    assert re.fullmatch(r"[0-9a-f]{64}", meta["task_identities"]["detection"]["weights"]["sha256"])
    assert re.fullmatch(r"[0-9a-f]{64}", meta["task_identities"]["segmentation"]["weights_sha256"])
    assert set(meta["methods"]) == {"hr", "bicubic"}
    assert meta["methods"]["bicubic"]["options"] == {"resample": "bicubic"}
    assert meta["methods"]["bicubic"]["weights"] == {}
    assert (demo_run / "jobs" / "synthir_demo__hr.json").is_file()


def test_figures_4_and_5_in_paper_report_and_html(demo_run, tmp_path):
    out = tmp_path / "paper"
    assert (
        paper_main(["--results", str(demo_run / "results.csv"), "--out", str(out), "--dataset", "Set5=synthir_demo"])
        == 0
    )
    figs = out / "figures"
    for n in (3, 4, 5):
        pngs = sorted(figs.glob(f"fig{n}_synthir_demo_*.png"))
        assert len(pngs) == 1, (n, sorted(p.name for p in figs.iterdir()))
        assert pngs[0].with_suffix(".svg").is_file() and pngs[0].stat().st_size > 5000
    page = (out / "report.html").read_text()
    for caption in ("Figure 4 (synthir_demo", "Figure 5 (synthir_demo"):
        assert caption in page
    srcs = re.findall(r"<img src='([^']*)'", page)
    # fig3, fig4, fig5, fig6 x2, the no-reference quality radar and a significance picture per task (3)
    assert len(srcs) == 9 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "No-reference quality (synthir_demo)" in page
    # the run metadata: versions, seed, device, task weights sha256, per-method weights table
    meta = json.loads((demo_run / "run.json").read_text())
    det_sha = meta["task_identities"]["detection"]["weights"]["sha256"]
    for text in (
        "Method weights (sha256)",
        "<th>seed</th>",
        "<th>device</th>",
        "<th>versions</th>",
        det_sha,
        "detection_demo",
    ):
        assert text in page, text
    md = (out / "paper.md").read_text()
    assert "fig4_synthir_demo" in md and "fig5_synthir_demo" in md and "## Run" in md and det_sha in md
    assert "Figures 4/5" not in md  # nothing skipped


def test_user_frame_and_crop_and_missing_run_json(demo_run, tmp_path):
    out = tmp_path / "p"
    assert (
        paper_main(
            [
                "--results",
                str(demo_run / "results.csv"),
                "--out",
                str(out),
                "--no-html",
                "--frame",
                "synthir_100001",
                "--crop",
                "10,20,110,100",
            ]
        )
        == 0
    )
    assert (out / "figures" / "fig4_synthir_demo_synthir_100001.png").is_file()
    assert "crop (10, 20, 110, 100) chosen by the user" in (out / "paper.md").read_text()
    # without run.json the detector is unknown: Figures 4/5 are skipped with the reason, Figure 3 is made
    (demo_run / "run.json").rename(demo_run / "run.json.bak")
    try:
        out2 = tmp_path / "q"
        assert paper_main(["--results", str(demo_run / "results.csv"), "--out", str(out2), "--no-html"]) == 0
        md = (out2 / "paper.md").read_text()
        assert "Figures 4/5 (synthir_demo): no run.json" in md and "No run.json next to the results" in md
        assert list((out2 / "figures").glob("fig3_*.png")) and not list((out2 / "figures").glob("fig4_*.png"))
    finally:
        (demo_run / "run.json.bak").rename(demo_run / "run.json")


def test_missing_task_weights_skip_with_reason(demo_run, tmp_path):
    meta = json.loads((demo_run / "run.json").read_text())
    broken = dict(
        meta,
        tasks={"detection": "detection_m3fd", "segmentation": "segmentation_fmb"},
        weights_dir=str(tmp_path / "no_weights"),
    )
    original = (demo_run / "run.json").read_text()
    (demo_run / "run.json").write_text(json.dumps(broken))
    try:
        out = tmp_path / "p"
        assert paper_main(["--results", str(demo_run / "results.csv"), "--out", str(out), "--no-html"]) == 0
        md = (out / "paper.md").read_text()
        assert "Figure 4 (synthir_demo): detection task 'detection_m3fd' cannot be built" in md
        assert "Figure 5 (synthir_demo): segmentation task 'segmentation_fmb' cannot be built" in md
    finally:
        (demo_run / "run.json").write_text(original)


def test_cluster_crop_picks_the_densest_group():
    boxes = np.array([[0, 5, 5, 15, 15], [1, 200, 150, 210, 160], [1, 215, 160, 225, 170], [0, 205, 170, 212, 180]])
    x0, y0, x1, y1 = cluster_crop(boxes, (240, 320), 96)
    assert (x1 - x0, y1 - y0) == (96, 96)
    assert x0 <= 200 and x1 >= 225 and y0 <= 150 and y1 >= 180
    assert cluster_crop(None, (240, 320), 96) == (112, 72, 208, 168)


def test_the_runs_own_report_builds_draws_and_computes_nothing_twice(tmp_path, monkeypatch):
    """A report written by the run (benchmarks.run without --no-report) takes the task networks the run built (its
    Resources) for Figures 4/5, and its paper report takes the significance rows, run tables and pictures the run's
    report made: each task is built once in the whole process, each picture drawn once, and the paper report holds
    the same files and significance.csv as one written later from the run folder (which builds them itself)."""
    import downstream.tasks as tasks_module
    import reports.build
    import reports.paper

    built: list[str] = []
    drawn: list[str] = []
    real = tasks_module.load_task

    def counting(config, **kwargs):
        built.append(config)
        return real(config, **kwargs)

    def counted(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            drawn.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    monkeypatch.setattr(tasks_module, "load_task", counting)
    for module in (reports.build, reports.paper):
        counted(module, "significance_figures")
        counted(module, "no_reference_radars")
    run = tmp_path / "run"
    assert run_main(["--methods", "hr,bicubic", "--limit", "2", "--out", str(run), "--quiet"]) == 0
    assert sorted(built) == ["detection_demo", "segmentation_demo"], built
    assert sorted(drawn) == ["no_reference_radars", "significance_figures"], drawn
    inside = run / "report" / "paper"
    for n in (4, 5):
        assert len(list((inside / "figures").glob(f"fig{n}_synthir_demo_*.png"))) == 1
    later = tmp_path / "later"
    assert paper_main(["--results", str(run / "results.csv"), "--out", str(later)]) == 0
    assert sorted(p.name for p in (inside / "figures").iterdir()) == sorted(
        p.name for p in (later / "figures").iterdir()
    )
    assert (inside / "significance.csv").read_text() == (later / "significance.csv").read_text()
    page = (inside / "report.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == (later / "report.html").read_text().count(
        "<img src='data:image/png;base64,"
    )


def test_a_task_figures_svg_holds_its_png_bytes_and_the_escaped_title(tmp_path, monkeypatch):
    """Figures 4/5 (ready-made pictures): the SVG is the title, escaped (names are data), above the PNG's own bytes
    as a data URI; no matplotlib figure is drawn for it."""
    import base64
    import xml.etree.ElementTree as ET

    from matplotlib.figure import Figure
    from PIL import Image

    from reports.qualitative import _picture

    monkeypatch.setattr(Figure, "draw", lambda *a: pytest.fail("a matplotlib figure was drawn"))
    picture = Image.fromarray(np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3))
    title = 'Figure 4: <script>alert(1)</script> & "$x^$"\x01\ud800/é'
    png, svg = _picture(picture, title, tmp_path / "fig4_x")
    text = svg.read_text(encoding="utf-8")
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;$x^$&quot;" in text
    root = ET.fromstring(text.encode("utf-8"))
    ns = {"svg": "http://www.w3.org/2000/svg", "xlink": "http://www.w3.org/1999/xlink"}
    assert root.find("svg:text", ns).text == 'Figure 4: <script>alert(1)</script> & "$x^$"  /é'
    href = root.find("svg:image", ns).get(f"{{{ns['xlink']}}}href")
    assert href.startswith("data:image/png;base64,")
    assert base64.b64decode(href.split(",", 1)[1]) == png.read_bytes()
    with Image.open(png) as im:
        assert np.array_equal(np.asarray(im), np.asarray(picture))
    assert (root.get("width"), root.get("height")) == ("9", str(7 + 40))
