"""Radar plots of per-class scores (the paper's Figure 6): one polygon per method."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def radar_plot(table: pd.DataFrame, title: str, stem: str | Path) -> list[Path]:
    """``table``: rows = methods, columns = classes. Writes PNG and SVG; returns their paths."""
    classes = [c for c in table.columns if c != "all"]
    if not classes:
        return []
    angles = np.linspace(0, 2 * np.pi, len(classes), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(6, 6), subplot_kw={"polar": True})
    for method, row in table[classes].iterrows():
        values = row.fillna(0.0).to_numpy(dtype=float).tolist()
        ax.plot(angles + angles[:1], values + values[:1], linewidth=1.5, label=str(method))
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.05)
    ax.set_xticks(angles)
    ax.set_xticklabels(classes)
    ax.set_title(title, pad=20)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return paths
