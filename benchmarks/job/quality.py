"""Quality scoring of a job's frames: every metric on every frame (cached per frame), then one mean row per
metric, an error row per frame a metric failed on and per metric that could not be built."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.cache import value_key
from benchmarks.job.context import JobContext
from benchmarks.job.frames import Frame
from benchmarks.stages import SUBSTAGE_IQA
from downstream.evidence import Evidence
from downstream.lr_consistency import lr_inputs
from sr.vocab import CLASS_ALL


@dataclass
class Score:
    """One metric on one frame: the metric (or the exception building it raised), its cache entry and path, and
    whether the entry is new (written to the cache only once the frame's PNG is)."""

    metric_name: str
    metric: Any
    path: Path | None = None
    entry: dict[str, Any] | None = None
    new: bool = False


class QualityScoring:
    def __init__(self, job: JobContext):
        self.job = job
        self.values: dict[str, dict[str, float]] = defaultdict(dict)  # metric -> sample id -> value
        self.flags: dict[str, tuple[str, ...]] = {}
        self.errors: dict[str, str] = {}
        self._keys: dict[str, str] = {}  # a metric's cache key: its identity and library versions, fixed in a job

    def _key(self, metric: Any) -> str:
        if metric.name not in self._keys:
            self._keys[metric.name] = value_key(metric.identity(), metric.libraries)
        return self._keys[metric.name]

    def score(self, sample_id: str, frame: Frame, image: torch.Tensor) -> list[Score]:
        """Every metric of the run on ``image`` (the frame's SR output as stored, [C,H,W] float): the cached entry,
        or the value computed now, or the error computing it raised."""
        job = self.job
        scores = []
        for metric_name in job.settings.metrics:
            metric = job.resources.metric(metric_name)
            if isinstance(metric, Exception):
                scores.append(Score(metric_name, metric))
                continue
            if metric.spec.reference and (frame.sample.hr is None or not job.at_hr_size):
                continue
            if metric.spec.lr_input and (frame.sample.lr is None or not job.at_hr_size):
                continue
            path = job.cache.quality_path(
                job.method_key, job.dataset_key, self._key(metric), sample_id, frame.sample.fingerprint
            )
            entry = job.cache.read_json(path)
            new = entry is None
            if new:
                try:
                    stages = job.resources.stages
                    with stages("iqa"), stages(f"{SUBSTAGE_IQA}{metric_name}"):  # the total, and per metric
                        extra = lr_inputs(metric, frame.sample, job.dataset)
                        if getattr(metric, "memoizes_reference", False):  # its reference side once per run
                            extra["memo"] = job.resources.references
                            extra["reference_key"] = (job.dataset_key, sample_id, frame.sample.fingerprint)
                        entry = {"value": float(metric(image[None], frame.reference, **extra)[0])}
                except Exception as exc:
                    entry = {"error": f"{type(exc).__name__}: {exc}"}
            scores.append(Score(metric_name, metric, path, entry, new))
        return scores

    def commit(self, sample_id: str, scores: list[Score]) -> None:
        """A frame's scores once its PNG is written, in sample order: new entries into the cache, values kept,
        errors as rows."""
        for s in scores:
            if isinstance(s.metric, Exception):
                self.errors[s.metric_name] = str(s.metric)
                continue
            self.flags[s.metric_name] = s.metric.flags
            if s.new:
                self.job.cache.write_json(s.path, s.entry)
            if "error" in s.entry:
                self.job.rows.add("quality", s.metric_name, math.nan, cls=sample_id, n=1, error=s.entry["error"])
            else:
                self.values[s.metric_name][sample_id] = s.entry["value"]

    def summarise(self, evidence: Evidence) -> None:
        """The mean row of each metric (its per-image values into ``evidence``), then a row per unbuilt metric."""
        method_flags = self.job.method.flags
        for metric_name, values in self.values.items():
            self.job.rows.add(
                "quality",
                metric_name,
                float(np.mean(list(values.values()))),
                n=len(values),
                flags=method_flags + self.flags.get(metric_name, ()),
            )
            evidence.values[("quality", metric_name, CLASS_ALL)] = np.array(
                [values.get(i, math.nan) for i in self.job.ids]
            )
        for metric_name, error in self.errors.items():
            self.job.rows.add("quality", metric_name, math.nan, flags=method_flags, error=error)
