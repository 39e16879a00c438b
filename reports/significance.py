"""Intervals and paired significance for the report, from results.csv plus the per-image samples of the run.

``significance_table(df, samples, reference)``: for every data set, task, metric and class, each method's paired
difference to ``reference`` (delta = method - reference, its 95 % bootstrap interval, the bootstrap p-value,
Holm-corrected across the methods compared on that row, and ``significant``), written as
``report/significance.csv``. ``ranked_marks`` decides the best / second-best marks of a table column: a mark is
given only where the difference to the next method is significant. Nothing here re-runs a model: every
replicate comes from ``downstream.evidence`` (see there, and downstream.bootstrap for the statistics).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from downstream.bootstrap import ALPHA, holm, paired_comparison
from downstream.evidence import DEFAULT_REFERENCE, Evidence, job_dataset, read_evidence, replicates_of
from reports.tables import fill_degradation
from sr.vocab import (
    COL_CI_HIGH,
    COL_CI_LOW,
    COL_CLASS,
    COL_DATASET,
    COL_DEGRADATION,
    COL_ERROR,
    COL_METHOD,
    COL_METRIC,
    COL_N,
    COL_TASK,
    COL_VALUE,
)

SIGNIFICANCE_COLUMNS = [
    COL_DATASET,
    COL_DEGRADATION,
    COL_METHOD,
    "reference",
    COL_TASK,
    COL_METRIC,
    COL_CLASS,
    "delta",
    COL_CI_LOW,
    COL_CI_HIGH,
    "p_value",
    "p_holm",
    "significant",
    COL_N,
]

RunEvidence = dict[tuple[str, str], Evidence]  # (data set, method) -> its per-image evidence


def load_evidence(run_dir: str | Path) -> RunEvidence:
    """Every ``samples/*.npz`` of a run directory (unreadable files are skipped: their rows get no interval)."""
    out: RunEvidence = {}
    for path in sorted((Path(run_dir) / "samples").glob("*.npz")):
        dataset, _, method = path.stem.rpartition("__")  # a data-set file name may hold "__" (folder:/x)
        try:
            out[(dataset, method)] = read_evidence(path)
        except (OSError, ValueError, KeyError):
            continue
    return out


def _evidence(samples: RunEvidence, dataset: str, method: str) -> Evidence | None:
    """The evidence of (data set, method); file names replace '/' and ':' so match on that spelling too."""
    return samples.get((dataset, method)) or samples.get((dataset.replace("/", "_").replace(":", "_"), method))


def compare(a: Evidence | None, b: Evidence | None, key: tuple[str, str, str], delta: float) -> dict[str, float]:
    """Paired difference a - b of one row; NaN when either side has no evidence or the image lists differ."""
    nan = {"delta": delta, COL_CI_LOW: math.nan, COL_CI_HIGH: math.nan, "p_value": math.nan}
    if a is None or b is None or a.ids != b.ids or a.seed != b.seed:
        return nan
    ra, rb = replicates_of(a, key), replicates_of(b, key)
    if ra is None or rb is None:
        return nan
    return paired_comparison(ra, rb, delta)


def _values(df: pd.DataFrame) -> pd.Series:
    ok = fill_degradation(df[df[COL_VALUE].notna() & (df[COL_ERROR] == "")].copy())
    return ok.groupby([COL_DATASET, COL_DEGRADATION, COL_TASK, COL_METRIC, COL_CLASS, COL_METHOD])[COL_VALUE].first()


def significance_table(df: pd.DataFrame, samples: RunEvidence, reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """One row per (data set, degradation, method != reference, task, metric, class) with a value for both: methods
    are compared under the same degradation only."""
    values = _values(df)
    rows = []
    for (dataset, degradation, task, metric, cls), group in values.groupby(level=[0, 1, 2, 3, 4]):
        by_method = group.droplevel([0, 1, 2, 3, 4])
        if reference not in by_method.index:
            continue
        job = job_dataset(dataset, degradation)  # the samples of a degraded job are filed under this name
        ref_evidence = _evidence(samples, job, reference)
        block = []
        for method, value in by_method.items():
            if method == reference:
                continue
            result = compare(
                _evidence(samples, job, method), ref_evidence, (task, metric, cls), float(value - by_method[reference])
            )
            block.append(
                {
                    COL_DATASET: dataset,
                    COL_DEGRADATION: degradation,
                    COL_METHOD: method,
                    "reference": reference,
                    COL_TASK: task,
                    COL_METRIC: metric,
                    COL_CLASS: cls,
                    **result,
                    COL_N: len(ref_evidence.ids) if ref_evidence is not None else 0,
                }
            )
        for row, p in zip(block, holm([r["p_value"] for r in block])):
            row["p_holm"] = float(p)
            row["significant"] = bool(np.isfinite(p) and p < ALPHA)
        rows += block
    return pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS)


def ranked_marks(
    values: pd.Series, samples: RunEvidence, dataset: str, key: tuple[str, str, str], higher_better: bool
) -> dict[str, str]:
    """{method: "best" | "second"} for one column: the best is marked only where its paired difference to the
    second is significant (p < ALPHA), the second only where the best is marked and its difference to the third is
    significant; methods absent from ``values`` are not ranked."""
    order = values.dropna().sort_values(ascending=not higher_better)
    marks: dict[str, str] = {}
    for rank, label in enumerate(("best", "second")):
        if len(order) < rank + 2:
            break
        upper, lower = order.index[rank], order.index[rank + 1]
        result = compare(
            _evidence(samples, dataset, upper),
            _evidence(samples, dataset, lower),
            key,
            float(order.iloc[rank] - order.iloc[rank + 1]),
        )
        if not (np.isfinite(result["p_value"]) and result["p_value"] < ALPHA):
            break
        marks[upper] = label
    return marks
