"""Wall-time accumulation by stage, for the demo suite's stage table (``python -m benchmarks.perf --stages``).

    from benchmarks.timing import stage
    with stage("sr"):
        output = method.upscale(...)

Totals are per process and cheap (one ``perf_counter`` pair per block); nested blocks of the same
name are counted once (the outer one). CUDA work is synchronised at the block's end when
``sync_cuda(True)`` was called, so asynchronous kernels are charged to the stage that launched them.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

_totals: dict[str, float] = defaultdict(float)
_counts: dict[str, int] = defaultdict(int)
_active: dict[str, int] = defaultdict(int)
_sync = False


def sync_cuda(enabled: bool = True) -> None:
    global _sync
    _sync = enabled


def _synchronize() -> None:
    if _sync:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


@contextlib.contextmanager
def stage(name: str):
    """Add the block's wall time to ``name``'s total."""
    if _active[name]:
        yield
        return
    _active[name] += 1
    _synchronize()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _synchronize()
        _totals[name] += time.perf_counter() - t0
        _counts[name] += 1
        _active[name] -= 1


def totals() -> dict[str, tuple[float, int]]:
    """``{stage: (seconds, blocks)}`` so far."""
    return {k: (_totals[k], _counts[k]) for k in _totals}


def reset() -> None:
    _totals.clear()
    _counts.clear()
