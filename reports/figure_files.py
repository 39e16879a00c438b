"""A report figure as its two files, PNG and SVG, cropped to one tight bounding box measured once.

``fig.savefig(path, bbox_inches="tight")`` draws the figure twice (once to measure the tight box, once to render
it), so a PNG and an SVG that way are four draws. :func:`save_figure` measures the box once, the way matplotlib's
``savefig(bbox_inches="tight")`` does (``FigureCanvasBase.print_figure``: a draw that renders nothing at the
saving dpi, ``Figure.get_tightbbox`` padded by :rc:`savefig.pad_inches`), and writes both files with that box:
three draws. The PNG is the one ``bbox_inches="tight"`` writes, pixel for pixel; the SVG is cropped to the box the
PNG's renderer (Agg) measured instead of one the SVG renderer measures itself: its size can differ from a
``bbox_inches="tight"`` SVG's by a fraction of a point where a text's extent decides the box.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

FORMATS = (".png", ".svg")


def tight_bbox(fig: Figure, dpi: float) -> Bbox:
    """The box (inches) ``fig.savefig(..., bbox_inches="tight", dpi=dpi)`` crops to, from one draw that renders
    nothing; the figure's layout engine, if any, runs in that draw as it does in ``savefig``."""
    original = fig.dpi
    fig.dpi = dpi
    try:
        fig.draw_without_rendering()
        return fig.get_tightbbox().padded(matplotlib.rcParams["savefig.pad_inches"])
    finally:
        fig.dpi = original


def save_figure(fig: Figure, stem: str | Path, dpi: float) -> list[Path]:
    """``fig`` as ``stem``.png and ``stem``.svg (the folder made if needed), both cropped to :func:`tight_bbox`;
    the figure is closed. Returns the two paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(suffix) for suffix in FORMATS]
    bbox = tight_bbox(fig, dpi)
    # The layout was done by the measuring draw; a figure that keeps a layout engine (even the inert one
    # ``tight_layout()`` leaves) would be drawn once more by every savefig before it renders.
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    try:
        for path in paths:
            fig.savefig(path, bbox_inches=bbox, dpi=dpi)
    finally:
        plt.close(fig)
    return paths
