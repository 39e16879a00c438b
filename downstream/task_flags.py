"""Run-level flags of task rows: a void task says nothing about SR.

A task is *void* on a data set when its model hits nothing for any method, ``hr`` included: detection ``mAP50``
(class ``all``) and, for binary target masks, segmentation ``Pd`` (the share of targets detected) are 0 on every
row. A detector trained from scratch on a few frames typically finds nothing at all; its table then reads
``0.0000 [0.0000, 0.0000]`` with p = 1 everywhere, which ranks nothing. Every row of such a (suite, data set,
task) carries ``void_task`` (``sr.vocab.FLAG_VOID_TASK``; its note says what to do: a pretrained start, more
epochs). The rule needs every method's rows, so it is applied to the whole results table when it is written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sr.vocab import (
    CLASS_ALL,
    COL_CLASS,
    COL_DATASET,
    COL_DEGRADATION,
    COL_FLAGS,
    COL_METRIC,
    COL_SUITE,
    COL_TASK,
    COL_VALUE,
    FLAG_VOID_TASK,
    join_flags,
    split_flags,
)

#: per task kind, the class-``all`` metric that is 0 exactly when the model hits no object / target
HIT_METRICS = ("mAP50", "Pd")


def flag_void_tasks(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with ``void_task`` added to every row of each (suite, data set, degradation, task) whose hit
    metrics (``HIT_METRICS``, class ``all``) are 0 for every method that has a number."""
    if results.empty:
        return results
    hits = results[results[COL_METRIC].isin(HIT_METRICS) & (results[COL_CLASS].astype(str) == CLASS_ALL)]
    keys = [COL_SUITE, COL_DATASET, COL_DEGRADATION, COL_TASK]
    void = set()
    for key, rows in hits.groupby(keys):
        values = pd.to_numeric(rows[COL_VALUE], errors="coerce").to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size and not values.any():
            void.add(tuple(str(k) for k in key))
    results = results.copy()  # recomputed on the whole table: a row kept from an earlier run loses a stale flag
    results[COL_FLAGS] = [
        join_flags((split_flags(cell) - {FLAG_VOID_TASK}) | ({FLAG_VOID_TASK} if tuple(map(str, k)) in void else set()))
        for cell, k in zip(results[COL_FLAGS], zip(*(results[c] for c in keys)))
    ]
    return results
