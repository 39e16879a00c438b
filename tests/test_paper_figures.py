"""The paper's Figure 3 as one figure (one frame of each of Set5/15/20, every method beside it) and Figure 6's axes
(the overall metric and the paper's three classes)."""

from __future__ import annotations

import re

from PIL import Image

from benchmarks.run import main as run_main
from reports.paper import figure6_axes
from reports.paper import main as paper_main


def test_figure3_is_one_figure_with_one_distinct_frame_per_subset(tmp_path):
    """One data set standing in for Set5, Set15 and Set20 (as at demo scale): three rows, three different frames,
    the run's methods as columns; each subset's own Figure 3 is still there."""
    run = tmp_path / "run"
    quick = ["--tasks", "quality", "--metrics", "psnr", "--limit", "3", "--quiet", "--device", "cpu", "--no-report"]
    assert run_main(["--methods", "lr,bicubic,hr", "--out", str(run), *quick]) == 0
    out = tmp_path / "paper"
    maps = [a for label in ("Set5", "Set15", "Set20") for a in ("--dataset", f"{label}=synthir_demo")]
    assert paper_main(["--results", str(run / "results.csv"), "--out", str(out), "--no-html", *maps]) == 0
    png = out / "figures" / "fig3_combined.png"
    assert png.is_file() and png.with_suffix(".svg").is_file()
    with Image.open(png) as im:
        assert im.height > 500  # three rows of panels (one row: about 300 px)
    md = (out / "paper.md").read_text()
    caption = next(line for line in md.splitlines() if line.startswith("### Figure 3: one frame of each"))
    frames = re.findall(r"= synthir_demo frame (\S+) ", caption)
    assert len(frames) == 3 and len(set(frames)) == 3, caption
    assert len(list((out / "figures").glob("fig3_synthir_demo_*.png"))) == 1


def test_figure6_axes_are_the_overall_metric_and_the_papers_three_classes():
    columns = ["mIoU", "road", "car", "truck", "sky", "person"]
    assert figure6_axes("segmentation", columns) == ["mIoU", "person", "car", "truck"]
    assert figure6_axes("detection", ["mAP50-95", "Lamp", "car", "People", "Bus", "Truck"]) == [
        "mAP50-95",
        "People",
        "car",
        "Truck",
    ]
    own = ["mIoU", "crack", "pothole"]  # a user's classes: every one is drawn
    assert figure6_axes("segmentation", own) == own and figure6_axes("my_task", columns) == columns
