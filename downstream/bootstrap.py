"""Statistics over images: bootstrap confidence intervals, paired tests against a reference, Holm correction.

Every number in results.csv is a statistic of a set of images (a mean of per-image scores, or a task metric
such as COCO AP recomputed from per-image detections). Its uncertainty is estimated by resampling the images
with replacement: ``N_RESAMPLES`` seeded draws (``resample_indices``), the statistic recomputed on each
drawn image list, and the 2.5 / 97.5 percentiles of the replicates taken as the 95 % interval (percentile
bootstrap, Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13).

A paired comparison of a method against a reference method uses the SAME drawn image lists for both
(images are paired: the same frames went through both methods). The difference's replicates give its
interval; the two-sided p-value is the bootstrap tail probability of a zero difference,
``p = min(1, 2 * min(P*(d <= 0), P*(d >= 0)))`` with the (1 + count) / (1 + R) correction, so p < 0.05
exactly when the 95 % percentile interval excludes 0. Across the methods compared with one reference on one
(data set, task, metric, class), p-values are Holm-corrected (Holm 1979, "A simple sequentially rejective
multiple test procedure"), and a difference is significant when the corrected p < ``ALPHA``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sr.vocab import COL_CI_HIGH, COL_CI_LOW

N_RESAMPLES = 1000  # bootstrap draws per interval (percentile interval; p-values resolve down to 2 / 1001)
CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
DEFAULT_SEED = 0


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """[n_resamples, n] image indices drawn with replacement; the same (n, n_resamples, seed) give the same lists."""
    if n <= 0:
        return np.zeros((n_resamples, 0), dtype=np.int64)
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def resample_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """[R, n] int64: how often each of ``n`` images occurs in each drawn list (rows of ``indices``; -1 entries are
    left out). A statistic that is a sum over images (confusion matrices, detection counts) of a drawn list is the
    weighted sum with its row, so all lists are computed at once."""
    indices = np.asarray(indices, dtype=np.int64).reshape(len(indices), -1)
    weights = np.zeros((len(indices), n + 1), dtype=np.int64)  # the last column collects the left-out entries
    np.add.at(weights, (np.arange(len(indices))[:, None], indices), 1)
    return weights[:, :n]


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap replicates (NaN replicates ignored; NaN if none)."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(r, [tail, 100 - tail])
    return float(low), float(high)


def mean_replicates(values: Sequence[float], indices: np.ndarray) -> np.ndarray:
    """The mean of ``values`` over each drawn image list (rows of ``indices``)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.full(len(indices), np.nan)
    return v[indices].mean(axis=1)


def mean_interval(
    values: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of per-image ``values``."""
    return percentile_interval(mean_replicates(values, resample_indices(len(values), n_resamples, seed)))


def statistic_replicates(
    n: int, statistic: Callable[[np.ndarray], float], n_resamples: int = N_RESAMPLES, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """``statistic(image_indices)`` on each drawn image list: for statistics that are not means (COCO AP, IoU)."""
    return np.array([statistic(idx) for idx in resample_indices(n, n_resamples, seed)], dtype=np.float64)


def bootstrap_p_value(delta_replicates: np.ndarray) -> float:
    """Two-sided p-value of a zero difference from the bootstrap replicates of the difference (see module doc)."""
    d = np.asarray(delta_replicates, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    below = (1 + np.count_nonzero(d <= 0)) / (1 + d.size)
    above = (1 + np.count_nonzero(d >= 0)) / (1 + d.size)
    return float(min(1.0, 2 * min(below, above)))


def paired_comparison(
    method_replicates: np.ndarray, reference_replicates: np.ndarray, delta: float
) -> dict[str, float]:
    """Difference method - reference from replicates computed on the same image lists: its interval and p-value."""
    d = np.asarray(method_replicates, dtype=np.float64) - np.asarray(reference_replicates, dtype=np.float64)
    low, high = percentile_interval(d)
    return {"delta": float(delta), COL_CI_LOW: low, COL_CI_HIGH: high, "p_value": bootstrap_p_value(d)}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
