"""The frame pipeline of a job: frames decoded ahead of the SR step in one thread, SR (and scoring) in the job's
thread, PNGs written behind in another (``benchmarks.background``); each frame is committed in sample order once
its PNG is written, so the rows equal those of the sequential pipeline (depth 0).

A frame whose SR output is already in the cache (its PNG matching the digest of its cache entry) is read back
instead of super-resolved. A frame that cannot be
loaded, super-resolved or written is one error row; its scores never enter the cache."""

from __future__ import annotations

import logging
import math
import traceback
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.background import ahead, worker
from benchmarks.job.context import JobContext
from downstream.errors import DataError, LabelError
from downstream.imageio import on_png_grid, stored_image, to_uint8
from downstream.tasks import TaskItem
from sr.errors import UserError

log = logging.getLogger("benchmarks")


@dataclass
class Frame:
    """One sample as the loader thread hands it over: the LR batch to upscale (page-locked on CUDA), or the SR
    output already in the cache (``stored``, as ``read_image`` returns it)."""

    sample: Any
    reference: torch.Tensor | None
    sr_path: Path
    lr: torch.Tensor | None = None
    stored: np.ndarray | None = None


@dataclass
class _Pending:
    """One sample's outcome waiting for its PNG write: the error it raised, or its frame and scores."""

    id: str
    frame: Frame | None = None
    write: Any = None  # the PNG write's future (None when the PNG was in the cache)
    scores: list = field(default_factory=list)
    error: Exception | None = None


@dataclass
class Frames:
    """What the pipeline leaves for the tasks: the frames whose SR PNG is in the cache (as task items), their
    fingerprints, and the label errors met while loading (in sample order)."""

    items: list[TaskItem] = field(default_factory=list)
    fingerprints: list[tuple[str, str]] = field(default_factory=list)
    label_errors: list[str] = field(default_factory=list)


class Scorer(Protocol):
    def score(self, sample_id: str, frame: Frame, image: torch.Tensor) -> list: ...

    def commit(self, sample_id: str, scores: list) -> None: ...


def sample_seed(seed: int, sample_id: str) -> int:
    """The seed of a sample's random draws: from the run's seed and the sample id only (order-independent)."""
    return (seed * 1_000_003 + zlib.crc32(sample_id.encode())) % (2**31)


class FramePipeline:
    def __init__(self, job: JobContext, label_fields: list[str]):
        self.job = job
        self.label_fields = label_fields
        self.pin = job.method.device.type == "cuda"  # page-locked LR: its copy to the GPU does not block
        self.frames = Frames()

    def load(self, sample_id: str) -> Frame:
        """Runs in the loader thread, in sample order (so ``label_errors`` is in order too)."""
        job = self.job
        try:
            sample = job.dataset.load(sample_id)
        except LabelError as exc:  # a bad label file costs the tasks their frames, never the quality metrics
            self.frames.label_errors.append(str(exc))
            sample = job.dataset.load(sample_id, labels=False)
        if sample.lr is None and job.method.reads_lr:
            raise DataError(sample.lr_missing)
        # outputs are stored as 8-bit PNG: the reference is scored on that grid too (16-bit / float frames)
        reference = None if sample.hr is None else torch.from_numpy(on_png_grid(sample.hr.numpy()))[None]
        sr_path = job.cache.sr_path(job.method_key, job.dataset_key, sample_id, sample.fingerprint)
        stored = job.cache.read_sr(sr_path, channels=sample.channels)
        if stored is not None:
            return Frame(sample, reference, sr_path, stored=stored)
        # a method that does not read LR (the reference row) gets one of the LR's shape for a frame without
        scale = job.dataset.scale
        lr = sample.lr if sample.lr is not None else reference[0, :, ::scale, ::scale] * 0
        return Frame(sample, reference, sr_path, lr=lr[None].pin_memory() if self.pin else lr[None])

    def super_resolve(self, sample_id: str, frame: Frame, writer: Any) -> tuple[np.ndarray, Any]:
        """The frame's SR output as stored (8-bit, as ``read_image`` would return the PNG) and the future of its
        PNG write (None when it was in the cache)."""
        if frame.stored is not None:
            return frame.stored, None
        job = self.job
        torch.manual_seed(sample_seed(job.settings.seed, sample_id))
        with torch.inference_mode(), job.resources.stages("sr"):
            lr = frame.lr.to(job.method.device, non_blocking=self.pin)
            output = job.method.upscale(lr, reference=frame.reference, ids=[sample_id])
        data = to_uint8(output[0].permute(1, 2, 0).cpu().numpy())
        write = writer.submit(job.cache.write_sr, frame.sr_path, data)
        return stored_image(data, channels=frame.sample.channels), write

    def run(self, scorer: Scorer) -> Frames:
        """Every frame of the job loaded, super-resolved, scored by ``scorer``, written and committed in order."""
        job, depth = self.job, self.job.settings.prefetch
        with worker("irsr-load", depth) as loader, worker("irsr-write", depth) as writer:
            pending: deque[_Pending] = deque()
            frames = ahead(loader, self.load, job.ids, depth)
            label = f"{job.dataset_name}/{job.method_name}"
            for sample_id, loaded in tqdm(
                frames, total=len(job.ids), desc=label, disable=not job.settings.progress, leave=False
            ):
                done = _Pending(sample_id)
                try:
                    with job.resources.stages("load"):
                        done.frame = loaded.result()
                    stored, done.write = self.super_resolve(sample_id, done.frame, writer)
                except Exception as exc:
                    done.error = exc
                else:
                    done.scores = scorer.score(sample_id, done.frame, torch.from_numpy(stored).permute(2, 0, 1))
                pending.append(done)
                while len(pending) > depth:
                    self._commit(pending.popleft(), scorer)
            while pending:
                self._commit(pending.popleft(), scorer)
        return self.frames

    def _commit(self, done: _Pending, scorer: Scorer) -> None:
        """Task item and scores of one frame, in sample order, once its PNG is written: a frame whose PNG could not
        be written is an error row, and its values never enter the cache."""
        try:
            if done.error is not None:
                raise done.error
            if done.write is not None:
                with self.job.resources.stages("write"):
                    done.write.result()
        except Exception as exc:
            self._error_row(done.id, exc)
            return
        sample = done.frame.sample
        self.frames.fingerprints.append((done.id, sample.fingerprint))
        labels = {f: getattr(sample, f) for f in self.label_fields if getattr(sample, f) is not None}
        self.frames.items.append(TaskItem(id=done.id, image=done.frame.sr_path, labels=labels))
        scorer.commit(done.id, done.scores)

    def _error_row(self, sample_id: str, exc: Exception) -> None:
        job = self.job
        if isinstance(exc, UserError):  # a bad input file (DataError) or output file (sr.methods.outputs)
            error = str(exc)
        else:
            trace = "".join(traceback.format_exception(exc))
            log.error("%s/%s/%s failed:\n%s", job.dataset_name, job.method_name, sample_id, trace)
            error = f"{type(exc).__name__}: {exc}"
        job.rows.add("sr", "error", math.nan, cls=sample_id, n=1, flags=job.method.flags, error=error)
