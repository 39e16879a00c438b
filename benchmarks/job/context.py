"""A job's context: its settings, its data set and method opened, the cache keys they give, and its result rows."""

from __future__ import annotations

import logging
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.background import DEFAULT_PREFETCH
from benchmarks.cache import RunCache, key_of, value_key
from benchmarks.resources import Resources
from downstream.datasets import load_dataset
from downstream.degradations import degraded
from downstream.evidence import job_dataset
from sr.base import SRMethod
from sr.errors import UserError
from sr.vocab import (
    CLASS_ALL,
    COL_CLASS,
    COL_DATASET,
    COL_DEGRADATION,
    COL_ERROR,
    COL_FLAGS,
    COL_METHOD,
    COL_METRIC,
    COL_N,
    COL_SUITE,
    COL_TASK,
    COL_VALUE,
    DEGRADATION_DEFAULT,
    FLAG_SUBSET_SMALLER,
    join_flags,
)
from sr.weights import sha256_of

log = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Settings:
    """Everything a job needs besides its (data set, method, degradation); picklable for remote executors."""

    suite: str
    out: Path
    metrics: tuple[str, ...] = ()
    tasks: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    weights_dir: str | None = None
    limit: int | None = None
    seed: int = 0
    random_weights: bool = False
    progress: bool = True
    #: frames decoded ahead of the SR step and PNGs written behind it, in background threads (0: sequential)
    prefetch: int = DEFAULT_PREFETCH
    #: data sets given as YAML paths: the row name (``dataset_label``) -> the path
    dataset_files: dict[str, str] = field(default_factory=dict)
    #: the degradation axis: every (data set, method) pair runs under each (downstream.degradations labels)
    degradations: tuple[str, ...] = (DEGRADATION_DEFAULT,)
    #: methods given as ``outputs:DIR[=NAME]``: the row name (``sr.registry.method_label``) -> the spec
    method_specs: dict[str, str] = field(default_factory=dict)


class JobRows:
    """The result rows of one job (see sr.vocab.RESULT_COLUMNS); ``data_flags`` (the data set's caveats, e.g.
    fewer frames than asked) go on every row added after they are set."""

    def __init__(self, suite: str, dataset_name: str, method_name: str, degradation: str = DEGRADATION_DEFAULT):
        self.suite, self.dataset_name, self.method_name = suite, dataset_name, method_name
        self.degradation = degradation
        #: the data set's part of the job's file names (``<data set>@<degradation>`` off the default degradation)
        self.files_name = job_dataset(dataset_name, degradation)
        self.rows: list[dict[str, Any]] = []
        self.data_flags: tuple[str, ...] = ()

    def add(
        self,
        task: str,
        metric: str,
        value: float,
        cls: str = CLASS_ALL,
        n: int = 0,
        flags: tuple[str, ...] = (),
        error: str = "",
    ) -> None:
        self.rows.append(
            {
                COL_SUITE: self.suite,
                COL_DATASET: self.dataset_name,
                COL_DEGRADATION: self.degradation,
                COL_METHOD: self.method_name,
                COL_TASK: task,
                COL_METRIC: metric,
                COL_CLASS: cls,
                COL_VALUE: value,
                COL_N: n,
                COL_FLAGS: join_flags((*flags, *self.data_flags)),
                COL_ERROR: error,
            }
        )


class JobUnavailable(Exception):
    """The job's data set or method cannot be had: its one row's error text."""


def method_identity(method: SRMethod) -> dict[str, Any]:
    return {
        "name": method.name,
        "scale": method.scale,
        "options": method.options,
        "flags": method.flags,
        "weights": {role: sha256_of(p) for role, p in method.weight_files().items()},
    }


@dataclass
class JobContext:
    """One (data set, method, degradation) job opened: what every part of it reads, and the rows it adds."""

    settings: Settings
    resources: Resources
    rows: JobRows
    dataset: Any
    method: SRMethod
    ids: list[str]
    cache: RunCache
    identity: dict[str, Any]
    method_key: str
    dataset_key: str

    @property
    def dataset_name(self) -> str:
        return self.rows.dataset_name

    @property
    def method_name(self) -> str:
        return self.rows.method_name

    @property
    def files_name(self) -> str:
        return self.rows.files_name

    @property
    def at_hr_size(self) -> bool:
        """False for the "lr" row: no-reference metrics only, no tasks."""
        return self.method.scale == self.dataset.scale


def _open_dataset(dataset_name: str, degradation: str, settings: Settings) -> tuple[Any, list[str]]:
    try:
        source = load_dataset(settings.dataset_files.get(dataset_name, dataset_name))
        dataset = degraded(source, degradation, settings.seed)  # its LR made by the job's degradation
        return dataset, dataset.ids()
    except UserError as exc:
        raise JobUnavailable(str(exc)) from None
    except Exception as exc:  # e.g. an unreadable data folder: a row naming it, the other jobs go on
        log.error("data set %s failed to load:\n%s", dataset_name, traceback.format_exc())
        raise JobUnavailable(f"data set {dataset_name!r}: {type(exc).__name__}: {exc}") from None


def open_job(rows: JobRows, settings: Settings, resources: Resources) -> JobContext:
    """The job's data set and method (``JobUnavailable`` when either cannot be had), its frame ids (``--limit``),
    its data flags set on ``rows`` and its cache keys."""
    dataset, all_ids = _open_dataset(rows.dataset_name, rows.degradation, settings)
    method = resources.method(settings.method_specs.get(rows.method_name, rows.method_name))
    if isinstance(method, Exception):
        raise JobUnavailable(str(method) if isinstance(method, UserError) else f"{type(method).__name__}: {method}")
    rows.data_flags = dataset.flags
    if settings.limit and len(all_ids) < settings.limit:
        log.warning(
            "data set %s has %d frames, fewer than --limit %d; its rows are flagged %s",
            rows.dataset_name,
            len(all_ids),
            settings.limit,
            FLAG_SUBSET_SMALLER,
        )
        rows.data_flags = tuple({*rows.data_flags, FLAG_SUBSET_SMALLER})
    for file_id, error in method.unmatched(all_ids):  # e.g. an outputs folder's files that are no frame
        rows.add("sr", "error", math.nan, cls=file_id, n=1, error=error)
    identity = method_identity(method)
    return JobContext(
        settings=settings,
        resources=resources,
        rows=rows,
        dataset=dataset,
        method=method,
        ids=all_ids[: settings.limit] if settings.limit else all_ids,
        cache=RunCache(settings.out / "cache"),
        identity=identity,
        method_key=value_key(identity, method.libraries),
        dataset_key=key_of(dataset.identity()),
    )
