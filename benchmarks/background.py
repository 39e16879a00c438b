"""Background threads of the runner's frame pipeline: frames decoded ahead of the SR step, PNGs written behind it.

    with worker("irsr-load", depth) as loader:
        for sample_id, frame in ahead(loader, load, ids, depth):
            frame.result()  # the loaded frame, or the exception ``load`` raised, re-raised here

``worker`` is one thread that runs its calls one at a time in submission order (so frames stay in order); it
is joined when the block ends, after cancelling calls not yet started, so it never outlives the block, also
when the block raises (KeyboardInterrupt included). ``depth`` 0 is the sequential pipeline: no thread, each
call runs in the caller's thread when its result is asked for. Exceptions of a call surface from ``result()``
with their own type and traceback, so the caller handles them exactly as if it had made the call itself.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: frames in flight on each side of the SR step (``benchmarks.run --prefetch``): enough to hide one slow decode
#: or write, few enough to bound memory (each frame holds its LR, HR and SR arrays)
DEFAULT_PREFETCH = 2


class _Deferred:
    """A call made in the caller's thread when its result is asked for (depth 0)."""

    def __init__(self, fn: Callable[..., Any], args: tuple):
        self._fn, self._args = fn, args

    def result(self) -> Any:
        return self._fn(*self._args)


class _Inline:
    def submit(self, fn: Callable[..., Any], *args: Any) -> _Deferred:
        return _Deferred(fn, args)


@contextlib.contextmanager
def worker(name: str, depth: int) -> Iterator[Any]:
    """An executor running its calls in order in one thread named ``name`` (inline when ``depth`` is 0)."""
    if depth <= 0:
        yield _Inline()
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ahead(executor: Any, fn: Callable[[Any], Any], items: Iterable[Any], depth: int) -> Iterator[tuple[Any, Any]]:
    """``(item, future of fn(item))`` in the order of ``items``, with at most ``depth`` calls submitted beyond the
    item being yielded (the bound on frames held in memory)."""
    pending: deque = deque()
    for item in items:
        pending.append((item, executor.submit(fn, item)))
        if len(pending) > depth:
            yield pending.popleft()
    while pending:
        yield pending.popleft()
