"""Radar plots: per-class task scores (the paper's Figure 6) and no-reference quality per data set.

One polygon per method; where the 95 % bootstrap interval of each point is known, a translucent band between
the polygon of the lower and of the upper bounds is drawn around it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.escape import plain_text_figures
from reports.figure_files import save_figure
from sr.vocab import CLASS_ALL

plain_text_figures()  # names on the axes are data: no mathtext


def radar_plot(
    table: pd.DataFrame,
    title: str,
    stem: str | Path,
    low: pd.DataFrame | None = None,
    high: pd.DataFrame | None = None,
    axes: list | None = None,
) -> list[Path]:
    """``table``: rows = methods, columns = axes (classes; an "all" column is left out unless ``axes`` names
    it). ``low`` / ``high``: the interval bounds, same shape (optional). Writes PNG and SVG; returns the paths."""
    axes = axes if axes is not None else [c for c in table.columns if c != CLASS_ALL]
    if not axes:
        return []
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    closed = angles + angles[:1]
    fig, ax = plt.subplots(figsize=(6, 6), subplot_kw={"polar": True})
    for method, row in table[axes].iterrows():
        values = row.fillna(0.0).to_numpy(dtype=float).tolist()
        (line,) = ax.plot(closed, values + values[:1], linewidth=1.5, label=str(method))
        band = _band(low, high, method, axes)
        if band is not None:
            lo, hi = band
            ax.fill_between(closed, lo + lo[:1], hi + hi[:1], color=line.get_color(), alpha=0.15, linewidth=0)
        else:
            ax.fill(closed, values + values[:1], alpha=0.05)
    ax.set_xticks(angles)
    ax.set_xticklabels([str(a) for a in axes])
    ax.set_ylim(*_radial_limits(table[axes], high))
    ax.set_title(title, pad=20)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    return save_figure(fig, stem, dpi=120)


def _radial_limits(values: pd.DataFrame, high: pd.DataFrame | None) -> tuple[float, float]:
    """From 0 (or the lowest value, if negative) to the highest value or interval bound; 0 to 1 when every value
    is 0 (matplotlib would centre an all-zero plot on 0 with negative ticks)."""
    data = values.to_numpy(dtype=float)
    if high is not None:
        data = np.concatenate([data.ravel(), high.reindex(columns=values.columns).to_numpy(dtype=float).ravel()])
    data = data[np.isfinite(data)]
    bottom = min(0.0, float(data.min())) if data.size else 0.0
    top = float(data.max()) if data.size else 0.0
    return bottom, top * 1.05 if top > bottom else bottom + 1.0


def _band(low, high, method, axes) -> tuple[list[float], list[float]] | None:
    if low is None or high is None or method not in low.index or method not in high.index:
        return None
    lo = low.loc[method, axes].to_numpy(dtype=float)
    hi = high.loc[method, axes].to_numpy(dtype=float)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    return lo.tolist(), hi.tolist()


def normalised_for_radar(
    values: pd.DataFrame, low: pd.DataFrame, high: pd.DataFrame, higher_better: dict[str, bool]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Scores on different scales mapped to [0, 1] per column (min to max over the methods' values and interval
    bounds), flipped where lower is better, so that outward is better on every axis; returns (values, low, high)."""
    lows = low.reindex_like(values).fillna(values)
    highs = high.reindex_like(values).fillna(values)
    lo = pd.concat([values, lows, highs]).min()
    span = (pd.concat([values, lows, highs]).max() - lo).replace(0.0, 1.0)
    out = []
    for t in (values, lows, highs):
        n = (t - lo) / span
        flip = [c for c in n.columns if not higher_better.get(c, True)]
        n[flip] = 1.0 - n[flip]
        out.append(n)
    v, a, b = out
    # after a flip the lower bound maps above the upper one: order each pair again
    return v, np.minimum(a, b), np.maximum(a, b)
