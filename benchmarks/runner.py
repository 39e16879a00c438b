"""One benchmark job = one (data set, method) pair: super-resolve, score, run the tasks.

``run_job`` is what every executor calls (in process, or on a Ray worker); it returns result rows
and leaves every SR output and metric value in the run cache, so a rerun recomputes only what is
missing. Failures are rows, not exceptions: a method that cannot be built (missing weights), a
sample that cannot be read, a metric without its weights each become a row with the error text
and the run goes on.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import traceback
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.background import DEFAULT_PREFETCH, ahead, worker
from benchmarks.cache import RunCache, finite_or_nan, key_of, value_key
from benchmarks.timing import stage
from downstream.datasets import load_dataset
from downstream.errors import DataError, LabelError
from downstream.evidence import (
    Sample,
    add_task_replicates,
    attach_intervals,
    dataset_seed,
    sample_path,
    task_replicates,
    write_sample,
)
from downstream.imageio import on_png_grid, read_image, stored_image, to_uint8, write_png
from downstream.lr_consistency import flag_lr_inconsistent, lr_inputs
from downstream.tasks import TaskItem, load_task
from sr.atomic import atomic_write_text
from sr.base import SRMethod
from sr.errors import UserError
from sr.registry import load_method
from sr.vocab import (
    CLASS_ALL,
    COL_CLASS,
    COL_DATASET,
    COL_ERROR,
    COL_FLAGS,
    COL_METHOD,
    COL_METRIC,
    COL_N,
    COL_SUITE,
    COL_TASK,
    COL_VALUE,
    FLAG_SUBSET_SMALLER,
    join_flags,
)
from sr.weights import sha256_of

log = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Settings:
    """Everything a job needs besides its (data set, method) pair; picklable for remote executors."""

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


class _Pool:
    """Metric and task objects built once per process (or the error that building them raised)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._objects: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, name: str) -> Any:
        key = (kind, name)
        if key not in self._objects:
            common = {
                "device": self.settings.device,
                "weights_dir": self.settings.weights_dir,
                "random_weights": self.settings.random_weights,
            }
            try:
                if kind == "metric":
                    from downstream.metrics import QualityMetric

                    self._objects[key] = QualityMetric(name, **common)
                else:
                    self._objects[key] = load_task(name, **common)
            except Exception as exc:  # a metric or task that cannot be built is an error row, never a lost run
                if not isinstance(exc, UserError):
                    log.error("%s %s failed to build:\n%s", kind, name, traceback.format_exc())
                self._objects[key] = exc
        return self._objects[key]


_POOLS: dict[tuple, _Pool] = {}


def _pool(settings: Settings) -> _Pool:
    key = (settings.device, settings.weights_dir, settings.random_weights)
    if key not in _POOLS:
        _POOLS[key] = _Pool(settings)
    return _POOLS[key]


@dataclass
class _Frame:
    """One sample as the loader thread hands it over: the LR batch to upscale (page-locked on CUDA), or the SR
    output already in the cache (``stored``, as ``read_image`` returns it)."""

    sample: Any
    reference: torch.Tensor | None
    sr_path: Path
    lr: torch.Tensor | None = None
    stored: np.ndarray | None = None


@dataclass
class _Scored:
    """One sample's outcome waiting for its PNG write: the error it raised, or its frame and metric entries."""

    id: str
    frame: _Frame | None = None
    write: Any = None  # the PNG write's future (None when the PNG was in the cache)
    scores: list[tuple] = field(default_factory=list)
    error: Exception | None = None


def _sample_seed(seed: int, sample_id: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(sample_id.encode())) % (2**31)


def method_identity(method: SRMethod) -> dict[str, Any]:
    return {
        "name": method.name,
        "scale": method.scale,
        "options": method.options,
        "flags": method.flags,
        "weights": {role: sha256_of(p) for role, p in method.weight_files().items()},
    }


def _write_output_index(settings: Settings, dataset_name: str, method_name: str, items: list[TaskItem]) -> None:
    """``<out>/sr_outputs/<data set>__<method>.csv``: where each SR frame of the job is (for figures); paths are
    relative to the run folder, fields quoted by the csv module (ids may hold commas or newlines)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["dataset", "method", "id", "path"])
    writer.writerows(
        [dataset_name, method_name, item.id, item.image.relative_to(settings.out).as_posix()] for item in items
    )
    atomic_write_text(
        settings.out / "sr_outputs" / f"{dataset_name}__{method_name}.csv".replace("/", "_"), buf.getvalue()
    )


def _write_job_identity(
    settings: Settings,
    dataset_name: str,
    method_name: str,
    identity: dict[str, Any],
    tasks: dict[str, dict[str, Any]],
    task_specs: dict[str, dict[str, Any]],
) -> None:
    """``<out>/jobs/<data set>__<method>.json``: the method's identity (name, options, weights sha256, flags),
    the identity of each task the job used (config, settings, weights sha256, or the error that building it
    raised) and each task's declarations (``Task.spec``: labels, metrics, report); ``benchmarks.run.write_results``
    merges these into run.json (for the report)."""
    import json

    atomic_write_text(
        settings.out / "jobs" / f"{dataset_name}__{method_name}.json".replace("/", "_"),
        json.dumps(
            {"dataset": dataset_name, "method": method_name, **identity, "tasks": tasks, "task_specs": task_specs},
            indent=2,
            default=str,
        )
        + "\n",
    )


def _write_per_image(
    settings: Settings, dataset_name: str, method_name: str, task_name: str, rows: list[dict[str, Any]]
) -> None:
    """``<out>/per_image/<data set>__<method>__<task>.csv``: a task's per-image values (rows with ``image``)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([COL_DATASET, COL_METHOD, COL_TASK, "image", COL_METRIC, COL_CLASS, COL_VALUE, COL_N])
    for r in rows:
        writer.writerow(
            [dataset_name, method_name, task_name, r["image"], r[COL_METRIC], r[COL_CLASS], r[COL_VALUE], r[COL_N]]
        )
    name = f"{dataset_name}__{method_name}__{task_name}.csv".replace("/", "_")
    atomic_write_text(settings.out / "per_image" / name, buffer.getvalue())


def run_job(dataset_name: str, method_name: str, settings: Settings) -> list[dict[str, Any]]:
    """Run one (data set, method) pair; returns its result rows (see sr.vocab.RESULT_COLUMNS)."""
    rows: list[dict[str, Any]] = []
    data_flags: tuple[str, ...] = ()  # the data set's caveats (e.g. fewer frames than asked) go on every row

    def add(
        task: str,
        metric: str,
        value: float,
        cls: str = CLASS_ALL,
        n: int = 0,
        flags: tuple[str, ...] = (),
        error: str = "",
    ) -> None:
        rows.append(
            {
                COL_SUITE: settings.suite,
                COL_DATASET: dataset_name,
                COL_METHOD: method_name,
                COL_TASK: task,
                COL_METRIC: metric,
                COL_CLASS: cls,
                COL_VALUE: value,
                COL_N: n,
                COL_FLAGS: join_flags((*flags, *data_flags)),
                COL_ERROR: error,
            }
        )

    try:
        dataset = load_dataset(settings.dataset_files.get(dataset_name, dataset_name))
        all_ids = dataset.ids()
    except UserError as exc:
        add("sr", "unavailable", math.nan, error=str(exc))
        return rows
    except Exception as exc:  # e.g. an unreadable data folder: a row naming it, the other jobs go on
        log.error("data set %s failed to load:\n%s", dataset_name, traceback.format_exc())
        add("sr", "unavailable", math.nan, error=f"data set {dataset_name!r}: {type(exc).__name__}: {exc}")
        return rows
    try:
        method = load_method(
            method_name,
            device=settings.device,
            weights_dir=settings.weights_dir,
            random_weights=settings.random_weights,
        )
    except UserError as exc:
        add("sr", "unavailable", math.nan, error=str(exc))
        return rows
    except Exception as exc:  # a broken method must not stop the other jobs
        log.error("method %s failed to build:\n%s", method_name, traceback.format_exc())
        add("sr", "unavailable", math.nan, error=f"{type(exc).__name__}: {exc}")
        return rows

    data_flags = dataset.flags
    if settings.limit and len(dataset.ids()) < settings.limit:
        log.warning(
            "data set %s has %d frames, fewer than --limit %d; its rows are flagged %s",
            dataset_name,
            len(dataset.ids()),
            settings.limit,
            FLAG_SUBSET_SMALLER,
        )
        data_flags = tuple({*data_flags, FLAG_SUBSET_SMALLER})
    cache = RunCache(settings.out / "cache")
    identity = method_identity(method)
    method_key = value_key(identity, method.libraries)
    dataset_key = key_of(dataset.identity())
    ids = all_ids[: settings.limit] if settings.limit else all_ids
    at_hr_size = method.scale == dataset.scale  # False for the "lr" row: no-reference metrics only, no tasks
    pool = _pool(settings)
    per_metric: dict[str, dict[str, float]] = defaultdict(dict)  # metric -> sample id -> value
    metric_flags: dict[str, tuple[str, ...]] = {}
    metric_errors: dict[str, str] = {}
    tasks = {task_name: pool.get("task", config) for task_name, config in settings.tasks.items()}
    label_fields = sorted({f for t in tasks.values() if not isinstance(t, Exception) for f in t.labels})
    items: list[TaskItem] = []
    fingerprints: list[tuple[str, str]] = []
    label_errors: list[str] = []  # a bad label file costs the tasks their frames, never the quality metrics

    depth = settings.prefetch
    pin = method.device.type == "cuda"  # page-locked LR frames: their copy to the GPU does not block this thread

    def load(sample_id: str) -> _Frame:
        """Runs in the loader thread, in sample order (so ``label_errors`` is in order too)."""
        try:
            sample = dataset.load(sample_id)
        except LabelError as exc:
            label_errors.append(str(exc))
            sample = dataset.load(sample_id, labels=False)
        if sample.lr is None and method.reads_lr:
            raise DataError(sample.lr_missing)
        # outputs are stored as 8-bit PNG: the reference is scored on that grid too (16-bit / float frames)
        reference = None if sample.hr is None else torch.from_numpy(on_png_grid(sample.hr.numpy()))[None]
        sr_path = cache.sr_path(method_key, dataset_key, sample_id, sample.fingerprint)
        if sr_path.is_file():
            return _Frame(sample, reference, sr_path, stored=read_image(sr_path, channels=sample.channels))
        # a method that does not read LR (the reference row) gets one of the LR's shape for a frame without
        lr = sample.lr if sample.lr is not None else reference[0, :, :: dataset.scale, :: dataset.scale] * 0
        return _Frame(sample, reference, sr_path, lr=lr[None].pin_memory() if pin else lr[None])

    metric_keys: dict[str, str] = {}  # a metric's cache key: its identity and library versions, fixed in a job

    def score(sample_id: str, frame: _Frame, image: torch.Tensor) -> list[tuple]:
        """(metric name, metric or the error building it raised, cache path, entry, whether the entry is new)."""
        scores = []
        for metric_name in settings.metrics:
            metric = pool.get("metric", metric_name)
            if isinstance(metric, Exception):
                scores.append((metric_name, metric, None, None, False))
                continue
            if metric.spec.reference and (frame.sample.hr is None or not at_hr_size):
                continue
            if metric.spec.lr_input and (frame.sample.lr is None or not at_hr_size):
                continue
            if metric_name not in metric_keys:
                metric_keys[metric_name] = value_key(metric.identity(), metric.libraries)
            qpath = cache.quality_path(
                method_key, dataset_key, metric_keys[metric_name], sample_id, frame.sample.fingerprint
            )
            entry = cache.read_json(qpath)
            new = entry is None
            if new:
                try:
                    with stage("iqa"):
                        extra = lr_inputs(metric, frame.sample, dataset)
                        entry = {"value": float(metric(image[None], frame.reference, **extra)[0])}
                except Exception as exc:
                    entry = {"error": f"{type(exc).__name__}: {exc}"}
            scores.append((metric_name, metric, qpath, entry, new))
        return scores

    def sample_error(sample_id: str, exc: Exception) -> None:
        if isinstance(exc, DataError):
            add("sr", "error", math.nan, cls=sample_id, n=1, flags=method.flags, error=str(exc))
            return
        trace = "".join(traceback.format_exception(exc))
        log.error("%s/%s/%s failed:\n%s", dataset_name, method_name, sample_id, trace)
        add("sr", "error", math.nan, cls=sample_id, n=1, flags=method.flags, error=f"{type(exc).__name__}: {exc}")

    def commit(done: _Scored) -> None:
        """Rows, cache entries and task item of one sample, in sample order, once its PNG is written: a frame
        whose PNG could not be written is an error row, and its values never enter the cache."""
        try:
            if done.error is not None:
                raise done.error
            if done.write is not None:
                with stage("write"):
                    done.write.result()
        except Exception as exc:
            sample_error(done.id, exc)
            return
        sample = done.frame.sample
        fingerprints.append((done.id, sample.fingerprint))
        items.append(
            TaskItem(
                id=done.id,
                image=done.frame.sr_path,
                labels={f: getattr(sample, f) for f in label_fields if getattr(sample, f) is not None},
            )
        )
        for metric_name, metric, qpath, entry, new in done.scores:
            if isinstance(metric, Exception):
                metric_errors[metric_name] = str(metric)
                continue
            metric_flags[metric_name] = metric.flags
            if new:
                cache.write_json(qpath, entry)
            if "error" in entry:
                add("quality", metric_name, math.nan, cls=done.id, n=1, error=entry["error"])
            else:
                per_metric[metric_name][done.id] = entry["value"]

    # frames are decoded up to ``depth`` ahead in one thread and PNGs written behind in another (benchmarks.background)
    # while this thread runs SR and the metrics; results are committed in sample order, so rows equal depth 0's
    with worker("irsr-load", depth) as loader, worker("irsr-write", depth) as writer:
        pending: deque[_Scored] = deque()
        frames = ahead(loader, load, ids, depth)
        for sample_id, loaded in tqdm(
            frames, total=len(ids), desc=f"{dataset_name}/{method_name}", disable=not settings.progress, leave=False
        ):
            done = _Scored(sample_id)
            try:
                with stage("load"):
                    done.frame = loaded.result()
                stored = done.frame.stored
                if stored is None:
                    torch.manual_seed(_sample_seed(settings.seed, sample_id))
                    with torch.inference_mode(), stage("sr"):
                        lr = done.frame.lr.to(method.device, non_blocking=pin)
                        output = method.upscale(lr, reference=done.frame.reference)
                    data = to_uint8(output[0].permute(1, 2, 0).cpu().numpy())
                    done.write = writer.submit(write_png, done.frame.sr_path, data)
                    stored = stored_image(data, channels=done.frame.sample.channels)
            except Exception as exc:
                done.error = exc
            else:
                done.scores = score(sample_id, done.frame, torch.from_numpy(stored).permute(2, 0, 1))
            pending.append(done)
            while len(pending) > depth:
                commit(pending.popleft())
        while pending:
            commit(pending.popleft())

    sample_evidence = Sample(ids=list(ids), seed=dataset_seed(settings.seed, dataset_name))
    for metric_name, values in per_metric.items():
        add(
            "quality",
            metric_name,
            float(np.mean(list(values.values()))),
            n=len(values),
            flags=method.flags + metric_flags.get(metric_name, ()),
        )
        sample_evidence.values[("quality", metric_name, CLASS_ALL)] = np.array([values.get(i, math.nan) for i in ids])
    for metric_name, error in metric_errors.items():
        add("quality", metric_name, math.nan, flags=method.flags, error=error)

    _write_output_index(settings, dataset_name, method_name, items)
    items_key = key_of(fingerprints)
    draws_key = key_of(sample_evidence.draws_identity())
    task_identities: dict[str, dict[str, Any]] = {}
    task_specs: dict[str, dict[str, Any]] = {}
    for task_name, task_config in settings.tasks.items():
        task = tasks[task_name]
        if isinstance(task, Exception):
            task_identities[task_name] = {"config": task_config, "error": f"{type(task).__name__}: {task}"}
            add(task_name, "unavailable", math.nan, flags=method.flags, error=str(task))
            continue
        task_identities[task_name] = {"config": task_config, **task.identity()}
        task_specs[task_name] = task.spec()
        if not at_hr_size or not task.applicable(dataset) or not items:
            continue
        if label_errors:
            add(
                task_name,
                "error",
                math.nan,
                flags=method.flags,
                error=f"{len(label_errors)} frame(s) have label "
                f"errors, so the task is not scored; the first: {label_errors[0]}",
            )
            continue
        task_key = value_key(task.identity(), task.libraries)
        tpath = cache.task_path(method_key, dataset_key, task_key, items_key)
        cached = cache.read_json(tpath)
        if cached is None:
            try:
                workdir = settings.out / "work" / task_name / f"{method_key}_{dataset_key}"
                with stage(task_name):
                    task.check_classes(task.dataset_classes(dataset))
                    task_rows, state = task.evaluate_with_state(items, task.dataset_classes(dataset), workdir)
                cached = {
                    "rows": [
                        {COL_METRIC: r.metric, COL_CLASS: r.cls, COL_VALUE: r.value, COL_N: r.n, "image": r.image}
                        for r in task_rows
                    ],
                    "state": state,
                }
            except UserError as exc:  # e.g. a class mismatch: its message says what to do, no traceback
                add(task_name, "error", math.nan, flags=method.flags, error=str(exc))
                continue
            except Exception as exc:
                log.error("task %s on %s/%s failed:\n%s", task_name, dataset_name, method_name, traceback.format_exc())
                add(task_name, "error", math.nan, flags=method.flags, error=f"{type(exc).__name__}: {exc}")
                continue
            cache.write_json(tpath, cached)
        if cached["state"] is not None:  # its bootstrap replicates (not cheap: COCO AP per drawn list), cached
            rpath = cache.replicates_path(method_key, dataset_key, task_key, items_key, draws_key)
            stored = cache.read_json(rpath)
            if stored is None:
                with stage("replicates"):
                    replicates = task_replicates(sample_evidence, type(task), cached["state"])
                cache.write_json(rpath, [[metric, cls, v.tolist()] for (metric, cls), v in replicates.items()])
            else:
                replicates = {(metric, cls): np.asarray(v, dtype=np.float64) for metric, cls, v in stored}
            add_task_replicates(sample_evidence, task_name, replicates)
        cached = cached["rows"]
        per_image = [r for r in cached if r.get("image")]
        if per_image:
            _write_per_image(settings, dataset_name, method_name, task_name, per_image)
        for r in cached:
            if not r.get("image"):
                add(
                    task_name,
                    r[COL_METRIC],
                    finite_or_nan(r[COL_VALUE]),
                    cls=r[COL_CLASS],
                    n=r[COL_N],
                    flags=method.flags + task.flags,
                )
    _write_job_identity(settings, dataset_name, method_name, identity, task_identities, task_specs)
    write_sample(sample_path(settings.out, dataset_name, method_name), sample_evidence)
    attach_intervals(rows, sample_evidence)
    return flag_lr_inconsistent(rows)
