"""The run's expensive objects, built once per run and passed in: an explicit object pool, no module state.

``benchmarks.run`` makes one ``Resources`` per run (a Ray worker one per call it runs) and hands it to every job:

    resources = Resources.for_settings(settings)
    method = resources.method("difiisr")        # the SRMethod, or the exception building it raised
    metric = resources.metric("psnr")           # a downstream.metrics.QualityMetric, or an exception
    task = resources.task("detection_demo")     # a downstream.tasks.Task, or an exception

An object is keyed by what it is built from: the resolved path of its YAML, a digest of its content (with
``base:`` files resolved) and the run's device, weights directory and random-weights switch -- never by a bare
name, so a YAML edited between two runs in one process, or two YAMLs of the same name, are two objects. A build
that fails is kept as its exception (one traceback in the log, the same error row for every job). SR methods are
the largest objects and each is used by consecutive jobs (``benchmarks.run`` orders jobs by method), so only the
last one built is kept; metrics and task networks are kept for the whole run.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks.cache import key_of
from benchmarks.stages import Stages
from sr.errors import UserError

log = logging.getLogger("benchmarks")


class Resources:
    def __init__(
        self,
        device: str = "cpu",
        weights_dir: str | None = None,
        random_weights: bool = False,
        stages: Stages | None = None,
    ):
        self.common = {"device": device, "weights_dir": weights_dir, "random_weights": random_weights}
        self.stages = stages or Stages()  # the run's wall time by stage (perf --stages synchronises CUDA in it)
        self._objects: dict[tuple, Any] = {}
        from downstream.metrics import ReferenceMemo

        self.references = ReferenceMemo()  # reference-side metric tensors (SSIM's), shared by the run's methods
        self._method: tuple[tuple, Any] | None = None

    @classmethod
    def for_settings(cls, settings: Any, stages: Stages | None = None) -> Resources:
        """The pool of a run with ``settings`` (a ``benchmarks.job.context.Settings``)."""
        return cls(settings.device, settings.weights_dir, settings.random_weights, stages)

    def _key(self, kind: str, registry: Any, name: str) -> tuple:
        """(kind, resolved YAML path -- or the module of an entry registered from Python --, digest of its content
        with ``base:`` resolved, digest of the run's options)."""
        entry = registry.python_entry(name)
        source = f"python:{entry.source}" if entry is not None else str(registry.path(name).resolve())
        return (kind, source, key_of(registry.config(name)), key_of(self.common))

    def _build(self, kind: str, name: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except Exception as exc:  # a method, metric or task that cannot be built is an error row, never a lost run
            if not isinstance(exc, UserError):
                log.error("%s %s failed to build:\n%s", kind, name, traceback.format_exc())
            return exc

    def _kept(self, key: tuple, kind: str, name: str, build: Callable[[], Any]) -> Any:
        if key not in self._objects:
            self._objects[key] = self._build(kind, name, build)
        return self._objects[key]

    def method(self, name: str) -> Any:
        """The SR method ``name`` (``sr.registry.load_method`` with the run's device and weights), or the exception
        building it raised; the last one built is kept."""
        from sr.registry import METHODS, load_method
        from sr.vocab import METHOD_OUTPUTS_PREFIX

        try:
            if name.startswith(METHOD_OUTPUTS_PREFIX):  # a folder of outputs: keyed by its spec, read when built
                key = ("method", name, key_of(self.common))
            else:
                key = self._key("method", METHODS, name)
        except UserError as exc:
            return exc
        if self._method is None or self._method[0] != key:
            self._method = None  # the previous method is released before the next one is built
            self._method = (key, self._build("method", name, lambda: load_method(name, **self.common)))
        return self._method[1]

    def metric(self, name: str) -> Any:
        """Quality metric ``name`` (an entry of configs/metrics.yaml or a metric plug-in, keyed by its content or
        metadata), or the exception building it raised."""
        from downstream.metrics import METRICS, QualityMetric

        try:
            key = ("metric", name, key_of(METRICS.get(name).metadata), key_of(self.common))
        except UserError as exc:
            return exc
        return self._kept(key, "metric", name, lambda: QualityMetric(name, **self.common))

    def task(self, config: str) -> Any:
        """The task of task config ``config`` (a name in configs/tasks/, a YAML path or a task plug-in), or the
        exception building it raised."""
        from downstream.tasks import TASKS, load_task

        try:
            key = self._key("task", TASKS, config)
        except UserError as exc:
            return exc
        return self._kept(key, "task", config, lambda: load_task(config, **self.common))
