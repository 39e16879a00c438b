"""One significance picture per data set and task: methods x metrics, each cell the paired difference to the
reference method, coloured by how much better (blue) or worse (red) than the reference, significant cells marked.

The colour of a cell is its difference, signed so that better is positive (lower-is-better metrics flipped), over
the largest absolute difference of its column: columns on different scales share one colour map. A cell reads the
difference itself (``+0.31``); ``*`` after it marks a difference significant after Holm's correction
(``p_holm < 0.05``). Only the class ``all`` rows are drawn; every row, per class included, is in significance.csv.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.escape import file_stem, plain_text_figures
from reports.figure_files import save_figure
from sr.vocab import CLASS_ALL, COL_CLASS, COL_DATASET, COL_METHOD, COL_METRIC, COL_TASK

plain_text_figures()  # method, data-set and task names in the pictures are data: no mathtext


def significance_figures(
    sig: pd.DataFrame, out: Path, reference: str, higher_better: Callable[[str, str], bool]
) -> list[tuple[str, Path]]:
    """Write ``significance_<data set>_<task>.{png,svg}`` under ``out`` from ``sig`` (the rows of
    ``reports.significance.significance_table``); ``higher_better(task, metric)``. Returns (caption, png) pairs."""
    if sig.empty:
        return []
    plain_text_figures()  # data set, task, method and metric names are data: no mathtext
    rows = sig[sig[COL_CLASS].astype(str) == CLASS_ALL]
    figures = []
    for (dataset, task), block in rows.groupby([COL_DATASET, COL_TASK], sort=True):
        delta = block.pivot_table(index=COL_METHOD, columns=COL_METRIC, values="delta", aggfunc="first")
        marked = block.pivot_table(index=COL_METHOD, columns=COL_METRIC, values="significant", aggfunc="first")
        metrics = list(dict.fromkeys(block[COL_METRIC]))
        methods = list(dict.fromkeys(block[COL_METHOD]))
        delta = delta.reindex(index=methods, columns=metrics)
        marked = marked.reindex(index=methods, columns=metrics).fillna(False).astype(bool)
        signs = np.array([1.0 if higher_better(str(task), str(m)) else -1.0 for m in metrics])
        better = delta.to_numpy(dtype=float) * signs
        scale = np.nanmax(np.abs(better), axis=0, initial=0.0)
        colour = np.divide(better, scale, out=np.zeros_like(better), where=scale > 0)
        width, height = 1.6 + 1.1 * len(metrics), 1.2 + 0.45 * len(methods)
        fig, ax = plt.subplots(figsize=(width, height))
        ax.imshow(np.nan_to_num(colour), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        for i in range(len(methods)):
            for j in range(len(metrics)):
                value = delta.iat[i, j]
                if np.isfinite(value):
                    text = f"{value:+.3g}" + ("*" if marked.iat[i, j] else "")
                    weight = "bold" if marked.iat[i, j] else "normal"
                    ink = "white" if abs(colour[i, j]) > 0.6 else "black"  # readable on the dark ends of the map
                    ax.text(j, i, text, ha="center", va="center", fontsize=8, fontweight=weight, color=ink)
        ax.set_xticks(range(len(metrics)), [str(m) for m in metrics], rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(methods)), [str(m) for m in methods], fontsize=8)
        ax.set_title(f"{dataset} / {task}: difference to {reference} (* p_holm < 0.05)", fontsize=9)
        stem = out / f"significance_{file_stem(dataset)}_{file_stem(task)}"
        with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable, selectable)
            paths = save_figure(fig, stem, dpi=120)
        caption = (
            f"Significance ({dataset}, {task}): method - {reference}, blue = better, red = worse "
            f"(each column scaled to its largest difference), * = significant after Holm (p < 0.05)"
        )
        figures.append((caption, paths[0]))
    return figures


def metric_direction(meta: dict | None, df: pd.DataFrame) -> Callable[[str, str], bool]:
    """``higher_better(task, metric)``: quality metrics from the metric registry, task metrics from the tasks'
    recorded declarations; True when neither knows the metric."""
    from downstream.metrics import metric_specs
    from reports.tasks import task_reports

    specs = metric_specs()
    tasks = task_reports(df, meta)

    def higher_better(task: str, metric: str) -> bool:
        if task == "quality" and metric in specs:
            return specs[metric].higher_better
        declared = tasks.get(task, (None, {}))[1].get(metric)
        return declared.higher_better if declared is not None else True

    return higher_better
