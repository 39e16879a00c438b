"""Wall time by stage of a run (frame loading, SR, IQA, PNG writing, each task, replicates): the runner's timer.

One ``Stages`` object per run (``benchmarks.resources.Resources.stages``); ``python -m benchmarks.speed.perf --stages``
reads its totals for the stage table::

    stages = Stages(sync_cuda=True)
    with stages("sr"):
        output = method.upscale(lr)
    stages.totals()  # {"sr": (seconds, blocks)}

Cheap (one ``perf_counter`` pair per block); nested blocks of the same name are counted once (the outer one).
With ``sync_cuda`` the CUDA queue is synchronised at the block's start and end, so asynchronous kernels are
charged to the stage that launched them.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

#: the prefix of the quality-metric stage's per-metric parts (``iqa:musiq``): within ``iqa``, not added to it again
SUBSTAGE_IQA = "iqa:"


class Stages:
    """Totals by stage name; used from the job's own thread (the pipeline's threads are timed from it)."""

    def __init__(self, sync_cuda: bool = False):
        self.sync_cuda = sync_cuda
        self._totals: dict[str, float] = defaultdict(float)
        self._cpu: dict[str, float] = defaultdict(float)  # process CPU time (all threads) during the stage's blocks
        self._counts: dict[str, int] = defaultdict(int)
        self._active: dict[str, int] = defaultdict(int)

    def _synchronize(self) -> None:
        if self.sync_cuda:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Add the block's wall time to ``name``'s total."""
        if self._active[name]:
            yield
            return
        self._active[name] += 1
        self._synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._synchronize()
            self._totals[name] += time.perf_counter() - t0
            self._cpu[name] += time.process_time() - c0
            self._counts[name] += 1
            self._active[name] -= 1

    def totals(self) -> dict[str, tuple[float, int]]:
        """``{stage: (seconds, blocks)}`` so far."""
        return {k: (self._totals[k], self._counts[k]) for k in self._totals}

    def cpu_totals(self) -> dict[str, float]:
        """``{stage: process CPU seconds during its blocks}`` so far (every thread of the process, so background
        threads running meanwhile count too): on a machine shared with other jobs it varies far less than wall time."""
        return dict(self._cpu)
