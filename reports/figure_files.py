"""A report figure as its two files, PNG and SVG, cropped to one tight bounding box measured once.

``fig.savefig(path, bbox_inches="tight")`` draws the figure twice (once to measure the tight box, once to render
it), so a PNG and an SVG that way are four draws. :func:`save_figure` measures the box once, the way matplotlib's
``savefig(bbox_inches="tight")`` does (``FigureCanvasBase.print_figure``: a draw that renders nothing at the
saving dpi, ``Figure.get_tightbbox`` padded by :rc:`savefig.pad_inches`), and writes both files with that box:
three draws. The PNG is the one ``bbox_inches="tight"`` writes, pixel for pixel; the SVG is cropped to the box the
PNG's renderer (Agg) measured instead of one the SVG renderer measures itself: its size can differ from a
``bbox_inches="tight"`` SVG's by a fraction of a point where a text's extent decides the box.

Drawing is most of a report's time. Within :func:`drawn_elsewhere` (the run's report, when the run has worker
processes: ``benchmarks.pool``) :func:`save_figure` hands each figure to another process (the pool pickles it, as
it does every call's arguments) and returns at once, so the figures are drawn beside the report's other work;
:func:`wait_for_figures` waits for the files (before anything reads them), and the block's end waits for all. The
figure goes with the rcParams in effect when it is handed over (a ``with plt.rc_context({"svg.fonttype": "none"})``
around the save, ``text.parse_math`` for the tick labels made while drawing): the worker's own are those of the
moment it was forked. The PNGs are the same bytes either way.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

FORMATS = (".png", ".svg")

#: while a report draws in other processes (:func:`drawn_elsewhere`): the submit function and the pending saves
_ELSEWHERE: contextvars.ContextVar[tuple[Callable[..., Future], list[Future]] | None] = contextvars.ContextVar(
    "report_figures_elsewhere", default=None
)


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
    the figure is closed. Returns the two paths (within :func:`drawn_elsewhere`, files still being written)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(suffix) for suffix in FORMATS]
    elsewhere = _ELSEWHERE.get()
    if elsewhere is None:
        _write(fig, paths, dpi)
    else:
        submit, pending = elsewhere
        plt.close(fig)  # out of pyplot here; the pool pickles the figure for the worker, which draws it
        rc = dict(matplotlib.rcParams.copy())
        del rc["backend"]  # as rc_context leaves it
        pending.append(submit(_write_with, rc, fig, paths, dpi))
    return paths


def _write(fig: Figure, paths: list[Path], dpi: float) -> None:
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


def _write_with(rc: dict, fig: Figure, paths: list[Path], dpi: float) -> None:
    with matplotlib.rc_context(rc):  # the rcParams save_figure was called with
        _write(fig, paths, dpi)


@contextlib.contextmanager
def drawn_elsewhere(submit: Callable[..., Future] | None) -> Iterator[None]:
    """Within the block, :func:`save_figure` draws through ``submit`` (a process pool's ``submit(fn, *args)``;
    None: here, as outside the block). Leaving the block waits for every figure; a failed one raises."""
    if submit is None:
        yield
        return
    token = _ELSEWHERE.set((submit, []))
    try:
        yield
        wait_for_figures()
    finally:
        pending = _ELSEWHERE.get()[1]  # after a failure in the block: no file is written once it has ended
        wait(pending)
        _ELSEWHERE.reset(token)


@contextlib.contextmanager
def own_figures() -> Iterator[None]:
    """A report inside another's (the paper report inside the run's): the figures saved within the block are drawn
    where the enclosing :func:`drawn_elsewhere` draws (here, outside one) and waited for by the block itself, on
    its way out or, after a failure in it, before the failure goes on, so they belong to this report: a failed one
    fails it, and none is written into its folder once it has been removed. The enclosing block's figures are
    not waited for here."""
    elsewhere = _ELSEWHERE.get()
    with drawn_elsewhere(elsewhere[0] if elsewhere else None):
        yield


def wait_for_figures() -> None:
    """Wait until every figure handed to another process so far is written (a failed one raises); nothing to
    wait for outside :func:`drawn_elsewhere`."""
    elsewhere = _ELSEWHERE.get()
    if elsewhere is None:
        return
    pending = elsewhere[1]
    while pending:
        pending.pop(0).result()
