"""Run-level flags of task rows: a void task says nothing about SR.

A task is *void* on a data set when its model hits nothing for any method, ``hr`` included: detection ``mAP50``
(class ``all``) and, for binary target masks, segmentation ``Pd`` (the share of targets detected) are 0 on every
row. A detector trained from scratch on a few frames typically finds nothing at all; its table then reads
``0.0000 [0.0000, 0.0000]`` with p = 1 everywhere, which ranks nothing. Every row of such a (suite, data set,
task) carries ``void_task`` (``sr.vocab.FLAG_VOID_TASK``; its note says what to do: a pretrained start, more
epochs). The rule needs every method's rows, so it is applied to the whole results table when it is written.

A class absent from the task model's training split (``class_absent_in_training``,
``sr.vocab.FLAG_CLASS_ABSENT_IN_TRAINING``) is a property of the task alone: the trainers
(``downstream.detection.train`` / ``downstream.segmentation.train --dataset``) record the training split's boxes /
labelled pixels per class in ``RUN/task.yaml`` (option ``train_counts``), and the task flags the per-class rows of
the classes counted 0 there and leaves them out of its ``all`` rows (mAP, APs/APm/APl, mIoU; value and bootstrap
replicates alike). ``keep_absent_classes: true`` keeps them in ``all``, which then carries the flag too. A task
config without ``train_counts`` (the committed demo configs) says nothing: the counts are unknown, nothing is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sr.errors import ConfigError
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
    FLAG_CLASS_ABSENT_IN_TRAINING,
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


def check_train_counts(counts: Any, what: str) -> dict[str, int] | None:
    """The ``train_counts`` option of task ``what`` as {class name: count >= 0}; None (unknown) stays None."""
    if counts is None:
        return None
    if not isinstance(counts, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in counts.items()
    ):
        raise ConfigError(
            f"{what} task: 'train_counts' must map class names to counts >= 0 (written by the trainer), got {counts!r}"
        )
    return dict(counts)


def absent_in_training(class_names, counts: Mapping[str, int] | None) -> tuple[str, ...]:
    """The classes of ``class_names`` that the training split had none of (a class the counts do not name had
    none either: the trainers record every class); () when the counts are unknown."""
    if counts is None:
        return ()
    return tuple(name for name in class_names if not counts.get(name, 0))


def absent_flags(cls: str, absent: tuple[str, ...], keep: bool) -> tuple[str, ...]:
    """The flags of a task row of class ``cls`` (``all`` or a class name), ``absent`` the classes with a row that
    training had none of: such a class's row is flagged, and the ``all`` row too when it keeps them (``keep``)."""
    if cls == CLASS_ALL:
        return (FLAG_CLASS_ABSENT_IN_TRAINING,) if keep and absent else ()
    return (FLAG_CLASS_ABSENT_IN_TRAINING,) if cls in absent else ()
