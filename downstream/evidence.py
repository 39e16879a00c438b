"""Per-image evidence behind each result row, kept so intervals and paired tests need no model re-runs.

One file per job, ``<out>/samples/<data set>__<method>.npz`` (plain arrays, read with ``allow_pickle=False``):

- ``ids``: the data set's image ids the job was asked for, in order; ``seed``: the resampling seed of the data
  set (the run's seed and the data set's name, never the method's, so every method of a data set is resampled
  on the SAME image lists and comparisons are paired);
- ``values/<task>/<metric>/<class>``: per-image scores aligned with ``ids`` (NaN where an image failed), for
  rows that are means over images (quality metrics);
- ``replicates/<task>/<metric>/<class>``: the row's statistic recomputed by its task on each of the
  ``N_RESAMPLES`` drawn image lists (``resample_indices(len(ids), N_RESAMPLES, seed)``), for rows that are
  not means (detection AP from the cached detections, IoU from per-image confusion matrices).

``replicates_of(evidence, key)`` gives every row's replicates the same way; the interval is their 2.5 / 97.5
percentiles (downstream.bootstrap).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from downstream.bootstrap import N_RESAMPLES, percentile_interval, resample_indices
from sr.atomic import atomic_path
from sr.vocab import COL_CI_HIGH, COL_CI_LOW, COL_CLASS, COL_METRIC, COL_TASK, DEGRADATION_DEFAULT

Key = tuple[str, str, str]  # (task, metric, class)
#: the method every other one is compared with in significance.csv unless --reference says otherwise
DEFAULT_REFERENCE = "bicubic"
_VALUES = "values"
_REPLICATES = "replicates"


def dataset_seed(seed: int, dataset: str) -> int:
    """The resampling seed of one data set in a run (independent of the method)."""
    return zlib.crc32(f"{seed}:{dataset}".encode()) % (2**31)


@dataclass
class Evidence:
    ids: list[str]
    seed: int
    values: dict[Key, np.ndarray] = field(default_factory=dict)
    replicates: dict[Key, np.ndarray] = field(default_factory=dict)

    def index_lists(self) -> np.ndarray:
        return resample_indices(len(self.ids), N_RESAMPLES, self.seed)

    def draws_identity(self) -> dict:
        """What the drawn image lists depend on (the cache key of task replicates computed on them)."""
        return {"ids": list(self.ids), "seed": self.seed, "resamples": N_RESAMPLES}

    def keys(self) -> list[Key]:
        return list(self.values) + [k for k in self.replicates if k not in self.values]


def replicates_of(evidence: Evidence, key: Key) -> np.ndarray | None:
    """The bootstrap replicates of one row (means of the drawn images' values, or the task's own)."""
    if key in evidence.replicates:
        return evidence.replicates[key]
    if key not in evidence.values:
        return None
    v = evidence.values[key]
    drawn = v[evidence.index_lists()]
    counts = np.isfinite(drawn).sum(axis=1)
    sums = np.where(np.isfinite(drawn), drawn, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def interval_of(evidence: Evidence, key: Key) -> tuple[float, float]:
    rep = replicates_of(evidence, key)
    return (float("nan"), float("nan")) if rep is None else percentile_interval(rep)


def _name(kind: str, key: Key) -> str:
    return "/".join((kind, *key))


def write_evidence(path: Path, evidence: Evidence) -> Path:
    arrays = {"ids": np.asarray(evidence.ids, dtype=str), "seed": np.asarray(evidence.seed, dtype=np.int64)}
    arrays.update({_name(_VALUES, k): np.asarray(v, dtype=np.float64) for k, v in evidence.values.items()})
    arrays.update({_name(_REPLICATES, k): np.asarray(v, dtype=np.float64) for k, v in evidence.replicates.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def read_evidence(path: Path) -> Evidence:
    with np.load(path, allow_pickle=False) as data:
        evidence = Evidence(ids=[str(i) for i in data["ids"]], seed=int(data["seed"]))
        for name in data.files:
            kind, _, rest = name.partition("/")
            parts = tuple(rest.split("/", 2))
            if kind in (_VALUES, _REPLICATES) and len(parts) == 3:
                getattr(evidence, kind)[parts] = data[name]
    return evidence


def job_dataset(dataset: str, degradation: str) -> str:
    """The data set's part of a job's file names (samples, per-image values, SR index): its name under the default
    degradation (the names runs had before the degradation axis), ``<data set>@<degradation>`` otherwise."""
    return dataset if degradation == DEGRADATION_DEFAULT else f"{dataset}@{degradation}"


def evidence_path(out: Path, dataset: str, method: str) -> Path:
    return Path(out) / "samples" / f"{dataset}__{method}.npz".replace("/", "_").replace(":", "_")


def task_replicates(evidence: Evidence, task_cls, state) -> dict[tuple[str, str], np.ndarray]:
    """(metric, class) -> the task's row recomputed (model-free, ``task_cls.replicates``) on each of ``evidence``'s
    drawn image lists; empty without a state. Depends only on ``state`` and :meth:`Evidence.draws_identity`."""
    if state is None or not evidence.ids:
        return {}
    draws = np.asarray(evidence.ids, dtype=str)[evidence.index_lists()]
    return {key: np.asarray(values, dtype=np.float64) for key, values in task_cls.replicates(state, draws).items()}


def add_task_replicates(evidence: Evidence, task_name: str, replicates: dict[tuple[str, str], np.ndarray]) -> None:
    for (metric, cls), values in replicates.items():
        evidence.replicates[(task_name, metric, cls)] = values


def attach_intervals(rows: list[dict], evidence: Evidence) -> None:
    """Set ``ci_low`` / ``ci_high`` of every result row ``evidence`` covers (NaN otherwise)."""
    for row in rows:
        low, high = interval_of(evidence, (row[COL_TASK], row[COL_METRIC], row[COL_CLASS]))
        row[COL_CI_LOW], row[COL_CI_HIGH] = low, high
