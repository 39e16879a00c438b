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


def _figure_makers(folder):
    """(name, module, make(stem folder) -> the png) for a radar, a significance picture and a Figure-3 image grid."""
    import numpy as np
    import pandas as pd

    import reports.qualitative as qualitative
    import reports.radar as radar
    import reports.significance_figure as significance

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.uniform(0.2, 0.9, (3, 4)), index=["bicubic", "$x^$", "hr"], columns=list("abcd"))
    sig = pd.DataFrame(
        [
            {"dataset": "ds", "task": "quality", "method": m, "metric": k, "class": "all", "delta": d, "significant": s}
            for (m, k), d, s in zip(
                [(m, k) for m in ("a", "b") for k in ("psnr", "ssim")], rng.normal(size=4), [1, 0] * 2
            )
        ]
    )
    rows = []
    for r in range(2):
        images = []
        for m, (w, h) in (("lr", (20, 15)), ("bicubic", (80, 60)), ("hr", (80, 60))):
            path = folder / f"{r}_{m}.png"
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
            images.append((m, path))
        rows.append((f"Set{r}: frame", images, (10, 5, 60, 55)))
    return [
        ("radar", radar, lambda out: radar.radar_plot(table, "radar", out / "radar", table - 0.1, table + 0.1)[0]),
        (
            "significance",
            significance,
            lambda out: significance.significance_figures(sig, out, "r", lambda t, m: True)[0][1],
        ),
        ("figure 3", qualitative, lambda out: qualitative.image_rows(rows, "Figure 3", out / "fig3")[0]),
    ]


def test_every_figure_is_drawn_three_times_for_its_png_and_svg_and_the_png_is_the_tight_one(tmp_path, monkeypatch):
    """reports.figure_files.save_figure measures the tight box once and saves PNG and SVG with it: three draws of the
    figure, not four (two per ``savefig(bbox_inches="tight")``), and the PNG is pixel for pixel the one
    ``savefig(bbox_inches="tight")`` writes."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.figure import Figure

    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: (draws.append(self), real_draw(self, renderer))[1])

    def tight_savefig(fig, stem, dpi):  # what each figure's module did before save_figure
        paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
        for path in paths:
            fig.savefig(path, bbox_inches="tight", dpi=dpi)
        plt.close(fig)
        return paths

    for name, module, make in _figure_makers(tmp_path):
        (tmp_path / "old").mkdir(exist_ok=True)
        with monkeypatch.context() as m:
            m.setattr(module, "save_figure", tight_savefig)
            old = make(tmp_path / "old")
        draws.clear()
        new = make(tmp_path / "new")
        assert len(draws) == 3 and len(set(map(id, draws))) == 1, (name, len(draws))
        assert new.with_suffix(".svg").stat().st_size > 1000, name
        with Image.open(old) as a, Image.open(new) as b:
            assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b)), name
