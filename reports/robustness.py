"""The robustness report of a run with a degradation axis: ``report/robustness.md`` and
``report/robustness_<data set>.png``.

Per data set, task and metric (rows over all classes): each method's value under every degradation of the run
with its 95 % interval, the mean over each degradation's severities, the drop from the clean (bicubic) value
(positive = worse, whatever the metric's direction), and, for metrics bounded in [0, 1] (task fractions, SSIM,
LPIPS), ImageNet-C's summary (Hendrycks & Dietterich, ICLR 2019) relative to a baseline *method* (bicubic
upscaling by default): with the error E = 1 - value (higher-better) or E = value (lower-better),
``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}``, ``mCE`` = mean over degradations c, and the relative
``rCE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)``, ``relative mCE`` = their mean. The
sums run over the severities the run has. The line plots show value against severity (0 = clean) per
degradation, one line per method, with the interval band.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reports.escape import file_stem, md_code, md_link, md_text, plain_text_figures
from reports.report_table import ReportTable
from reports.tables import fill_degradation
from sr.vocab import (
    CLASS_ALL,
    COL_CI_HIGH,
    COL_CI_LOW,
    COL_CLASS,
    COL_DATASET,
    COL_DEGRADATION,
    COL_ERROR,
    COL_METHOD,
    COL_METRIC,
    COL_TASK,
    COL_VALUE,
    DEGRADATION_DEFAULT,
)

#: the method whose errors normalise the corruption errors (ImageNet-C used AlexNet)
DEFAULT_BASELINE = "bicubic"
_SKIP_METRICS = {"error", "unavailable"}


def split_label(label: str) -> tuple[str, int | None]:
    """``noise@3`` -> ("noise", 3); ``bicubic`` -> ("bicubic", None)."""
    name, sep, severity = label.partition("@")
    return name, int(severity) if sep else None


def _order(labels) -> list[str]:
    """bicubic first, then by name and severity."""
    return sorted(set(labels), key=lambda x: (x != DEGRADATION_DEFAULT, split_label(x)[0], split_label(x)[1] or 0))


def _bounded(task: str, metric: str) -> bool:
    """Whether a row's values lie in [0, 1]: task rows are fractions; quality metrics as metrics.yaml says."""
    if task != "quality":
        return True
    from downstream.metrics import metric_specs

    spec = metric_specs().get(metric)
    return spec is not None and tuple(spec.range) == (0, 1)


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df[COL_VALUE].notna() & (df[COL_ERROR] == "") & (df[COL_CLASS] == CLASS_ALL)]
    return ok[~ok[COL_METRIC].isin(_SKIP_METRICS)]


def _summary(values: pd.DataFrame, higher: bool, bounded: bool, baseline: str) -> pd.DataFrame:
    """Per method: mean over each degradation's severities, drop from clean, and (bounded metrics) CE / mCE."""
    sign = 1.0 if higher else -1.0
    out = pd.DataFrame(index=values.index)
    names = sorted({split_label(c)[0] for c in values.columns if c != DEGRADATION_DEFAULT})
    clean = values[DEGRADATION_DEFAULT] if DEGRADATION_DEFAULT in values else pd.Series(math.nan, index=values.index)
    means = []
    for name in names:
        cols = [c for c in values.columns if split_label(c)[0] == name]
        out[f"{name} mean"] = values[cols].mean(axis=1)
        means.append(out[f"{name} mean"])
    if means:
        out["drop"] = sign * (clean - pd.concat(means, axis=1).mean(axis=1))
    if bounded and baseline in values.index:
        error = (1.0 - values) if higher else values
        ce, rce = [], []
        for name in names:
            cols = [c for c in values.columns if split_label(c)[0] == name]
            base = error.loc[baseline, cols].sum()
            ce.append(error[cols].sum(axis=1) / base if base > 0 else error[cols].sum(axis=1) * math.nan)
            if DEGRADATION_DEFAULT in error:
                rel = (error[cols].sub(error[DEGRADATION_DEFAULT], axis=0)).sum(axis=1)
                base_rel = (error.loc[baseline, cols] - error.loc[baseline, DEGRADATION_DEFAULT]).sum()
                rce.append(rel / base_rel if base_rel > 0 else rel * math.nan)
        if ce:
            out["mCE"] = pd.concat(ce, axis=1).mean(axis=1)
        if rce:
            out["relative mCE"] = pd.concat(rce, axis=1).mean(axis=1)
    return out


def robustness_tables(
    df: pd.DataFrame, meta: dict | None = None, baseline: str = DEFAULT_BASELINE
) -> list[tuple[str, ReportTable]]:
    """(data set, table) per data set, task and metric with rows under more than one degradation; ``meta``: the
    run's run.json (the tasks' metric declarations)."""
    from reports.significance_figure import metric_direction

    higher_better = metric_direction(meta, df)  # the tasks' declarations in run.json, metrics.yaml for quality
    rows = _rows(fill_degradation(df.copy()))
    out = []
    for (dataset, task, metric), group in rows.groupby([COL_DATASET, COL_TASK, COL_METRIC], sort=False):
        if group[COL_DEGRADATION].nunique() < 2:
            continue
        columns = _order(group[COL_DEGRADATION])

        def pivot(col, group=group, columns=columns):
            return group.pivot_table(index=COL_METHOD, columns=COL_DEGRADATION, values=col, aggfunc="first").reindex(
                columns=columns
            )

        values = pivot(COL_VALUE)
        higher, bounded = higher_better(task, metric), _bounded(task, metric)
        summary = _summary(values, higher, bounded, baseline)
        values = pd.concat([values, summary], axis=1)
        low = pivot(COL_CI_LOW) if COL_CI_LOW in group else None
        high = pivot(COL_CI_HIGH) if COL_CI_HIGH in group else None
        direction = "higher is better" if higher else "lower is better"
        text = (
            f"{md_text(task)} {md_text(metric)} ({direction}) per degradation, 95 % interval in brackets; "
            f"`<name> mean`: mean over that degradation's severities; `drop`: clean minus the mean over degradations, "
            f"signed so that positive is worse."
        )
        if "mCE" in values:
            text += (
                f" `mCE` / `relative mCE`: ImageNet-C's corruption errors relative to the method {md_code(baseline)}."
            )
        elif bounded:
            text += f" No mCE: the baseline method {md_code(baseline)} has no rows here."
        out.append(
            (
                str(dataset),
                ReportTable(
                    f"robustness_{dataset}_{task}_{metric}",
                    f"{md_text(dataset)}: {md_text(task)} {md_text(metric)}",
                    values,
                    low=low,
                    high=high,
                    text=text,
                    files=False,
                ),
            )
        )
    return out


def robustness_plot(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Metric against severity (0 = clean) per degradation with severities, one line and band per method (not the
    reference rows hr / lr): a grid of (metric x degradation) panels; the metrics are the task rows over all
    classes and psnr / ssim / lpips / niqe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain_text_figures()  # data set, method and metric names are data: no mathtext
    rows = _rows(fill_degradation(df.copy()))
    rows = rows[rows[COL_DATASET] == dataset]
    names = sorted({split_label(g)[0] for g in rows[COL_DEGRADATION] if split_label(g)[1] is not None})
    metrics = [
        (t, m)
        for t, m in dict.fromkeys(zip(rows[COL_TASK], rows[COL_METRIC]))
        if t != "quality" or m in ("psnr", "ssim", "lpips", "niqe")
    ]
    if not names or not metrics:
        return None
    fig, axes = plt.subplots(
        len(metrics), len(names), figsize=(3.2 * len(names), 2.4 * len(metrics)), squeeze=False, sharex=True
    )
    from reports.run_tables import _ranked

    methods = sorted(m for m in rows[COL_METHOD].unique() if _ranked(m))  # reference rows (hr, lr) would flatten it
    for i, (task, metric) in enumerate(metrics):
        for j, name in enumerate(names):
            ax = axes[i][j]
            for method in methods:
                r = rows[(rows[COL_TASK] == task) & (rows[COL_METRIC] == metric) & (rows[COL_METHOD] == method)]
                points = []
                for _, row in r.iterrows():
                    label_name, severity = split_label(row[COL_DEGRADATION])
                    if row[COL_DEGRADATION] == DEGRADATION_DEFAULT or label_name == name:
                        points.append(
                            (severity or 0, row[COL_VALUE], row.get(COL_CI_LOW, np.nan), row.get(COL_CI_HIGH, np.nan))
                        )
                if not points:
                    continue
                x, y, lo, hi = (np.array(v, dtype=float) for v in zip(*sorted(points)))
                (line,) = ax.plot(x, y, marker="o", markersize=3, label=method)
                if np.isfinite(lo).any():
                    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
            ax.set_title(f"{name}: {task} {metric}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(metrics) - 1:
                ax.set_xlabel("severity (0 = clean bicubic)", fontsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_robustness(df: pd.DataFrame, out: Path, meta: dict | None = None, baseline: str = DEFAULT_BASELINE) -> Path:
    """``out/robustness.md`` and ``out/robustness_<data set>.png``; ``meta``: the run's run.json."""
    tables = robustness_tables(df, meta, baseline)
    lines = [
        "# Robustness to degradations",
        "",
        "Each method under every degradation of the run (`configs/degradations/`, docs/degradations.md); clean ="
        " `bicubic`, the paper's protocol. The paper tables show bicubic only.",
        "",
    ]
    for dataset in dict.fromkeys(d for d, _ in tables):
        file = f"robustness_{file_stem(dataset)}.png"
        png = robustness_plot(df, dataset, out / file)
        lines += [f"## {md_code(dataset)}", ""]
        if png is not None:
            lines += [f"![{md_text(dataset)}]({md_link(png.name)})", ""]
        lines += [t.markdown() for d, t in tables if d == dataset]
    if not tables:
        lines.append("No metric has rows under more than one degradation.")
    path = out / "robustness.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
