"""``benchmarks.run --workers N``: the run's jobs in N worker processes on this machine's CPU.

Why more processes pay even on two cores: a job alternates between torch's kernels and single-threaded Python
(ultralytics' validator, metric bookkeeping, PNG decoding and encoding), so one process with two torch threads keeps
both cores busy only part of the time; two processes with one thread each keep them busy (docs/performance.md,
"--workers").

Threads: every worker computes with one torch thread. A forked child can use only one OpenMP thread safely when its
parent has used several (libgomp, torch's OpenMP runtime, hangs it otherwise), and the run's process may have (an
earlier call in the same Python process), so one thread is the rule that keeps every fork safe. Values depend on
torch's thread count at float rounding level (its reductions split their work by thread count): a run with workers
gives the numbers of a one-process run with one thread (tests/test_pool.py), on any machine; run.json records the
workers and threads. Cores beyond the workers stay idle: for a few heavy networks on many cores, ``--workers 1``
(one process, torch's own thread count) can be faster.

Processes: the workers are forked from the run's process after its set-up, so they start with its imports, data sets
and objects. CUDA cannot be used in a forked process: workers run on the CPU only (auto gives one process on a GPU).
Each worker keeps the SR method it builds; the jobs go out one method at a time, the jobs of one method sharing its
network. A job's rows come back to the run's process, which writes results.csv as the in-process executor does;
every SR output and metric value is in the run cache the moment it is computed, so a run killed with its workers
loses nothing already done, and a worker dies with the run's process (Linux).

The report's Figures 4/5 run the task networks: :meth:`JobPool.task` hands out the run's task object whose
``figure`` runs in a worker (one that ran a job of that task has its networks loaded already), so the run's own
process never loads them.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from benchmarks.job.context import Settings
from benchmarks.resources import Resources
from benchmarks.runner import run_job
from sr import cli
from sr.errors import UserError
from sr.vocab import ENV_WORKERS, OPT_WORKERS

#: the most workers ``auto`` starts: every worker holds its own networks and data, so memory grows with them
MAX_AUTO_WORKERS = 8
WORKERS_AUTO = "auto"
#: torch threads of every worker: the one count safe in a forked child (module docstring)
WORKER_THREADS = 1

Job = tuple[str, str, str]  # (data set, method, degradation)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_workers(text: str) -> int | None:
    """``--workers`` (an argparse type; its default comes from ``$IRSR_WORKERS``): ``auto`` (None) or a whole
    number >= 1."""
    if text.strip().lower() == WORKERS_AUTO:
        return None
    try:
        return cli.positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or {WORKERS_AUTO!r} (from {OPT_WORKERS} or ${ENV_WORKERS})") from None


def default_workers() -> str:
    """``$IRSR_WORKERS`` when set (the tests set 1), else ``auto``."""
    return os.environ.get(ENV_WORKERS) or WORKERS_AUTO


def resolve_workers(requested: int | None, device: str, methods: int) -> int:
    """How many worker processes run ``methods`` methods' jobs: ``requested`` (None: auto) capped at the number of
    methods; auto is the usable cores up to :data:`MAX_AUTO_WORKERS` on Linux's CPU, else 1 (one process on a GPU;
    fork is unsafe on macOS). 1 means the in-process executor, no pool. More than one on a GPU is a usage error."""
    if requested is None:
        requested = min(MAX_AUTO_WORKERS, usable_cores()) if device == "cpu" and sys.platform == "linux" else 1
    if requested > 1 and device != "cpu":
        raise UserError(
            f"{OPT_WORKERS} {requested}: worker processes run on the CPU only; use {OPT_WORKERS} 1 on {device}"
        )
    return max(1, min(requested, methods))


class JobPool:
    """``workers`` processes that run ``run_job`` with ``settings`` and the run's ``resources`` (inherited), one
    torch thread each; a context manager (the workers are forked at the first
    submit, as ``ProcessPoolExecutor`` forks them all then: in :meth:`run`, after the run's set-up; stopped on exit)."""

    def __init__(self, settings: Settings, workers: int, resources: Resources):
        self.settings, self.workers, self.resources = settings, workers, resources
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> JobPool:
        import multiprocessing

        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            # forked, not pickled: every worker starts with the run's objects themselves
            initargs=(self.settings, self.resources, os.getpid()),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, fn: Any, *args: Any) -> Future:
        """``fn(*args)`` in a worker (the report draws its figures so: reports.figure_files)."""
        if self._executor is None:
            raise RuntimeError("JobPool used outside its with-block")
        return self._executor.submit(fn, *args)

    def run(self, groups: list[list[Job]]) -> Iterator[tuple[Job, list[dict[str, Any]]]]:
        """Each group's jobs (one method's) in one worker; yields (job, rows) as groups finish. The run's metrics
        and tasks are built before the workers are forked, so each starts with them."""
        for name in self.settings.metrics:
            self.resources.metric(name)
        for config in self.settings.tasks.values():
            self.resources.task(config)
        futures = {self.submit(_run_group, group): group for group in groups}
        try:
            for future in as_completed(futures):
                yield from future.result()
        except BrokenProcessPool:
            unfinished = sorted({job[1] for future, group in futures.items() if not _finished(future) for job in group})
            raise RuntimeError(
                f"a worker process of the run died (killed, or out of memory) while running one of "
                f"{', '.join(unfinished)}; every SR output and metric value computed so far is in the run cache: rerun "
                f"the same command (with {OPT_WORKERS} 1 to run the jobs in the run's own process)"
            ) from None

    def task(self, config: str) -> Any:
        """The run's task ``config`` for the report (the run process's own object, or the exception building it
        raised), with ``figure`` run in a worker."""
        task = self.resources.task(config)
        return task if isinstance(task, Exception) else _PooledTask(self, config, task)


def _finished(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


class _PooledTask:
    """A task of the run's process whose ``figure`` (the only call that runs its networks) runs in a worker."""

    def __init__(self, pool: JobPool, config: str, task: Any):
        self._pool, self._config, self._task = pool, config, task

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def figure(self, *args: Any) -> Any:
        return self._pool.submit(_task_figure, self._config, *args).result()


# ----- in the worker processes -----------------------------------------------------------------------------------
#: a worker's run: its settings and Resources, set once by its initializer (a worker serves one run, one pool)
_WORKER: dict[str, Any] = {}


#: prctl option of <linux/prctl.h>: the signal this process gets when the thread that forked it exits
PR_SET_PDEATHSIG = 1


def _start_worker(settings: Settings, resources: Resources, run: int) -> None:
    """A forked worker's set-up: it dies with the run's process ``run``; :data:`WORKER_THREADS` torch threads
    before any torch call in it; the run's settings and Resources (the run process's own objects, inherited by the
    fork) for its jobs."""
    import torch

    _die_with(run)
    torch.set_num_threads(WORKER_THREADS)
    _WORKER.update(settings=settings, resources=resources)


def _die_with(run: int) -> None:
    """On Linux the kernel kills this worker when the run's process dies, even by SIGKILL (an orphaned worker
    would otherwise wait for work forever: the other workers hold its queue open). Elsewhere nothing is done."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != run:  # the run died before the line above
        os._exit(1)


def _run_group(group: list[Job]) -> list[tuple[Job, list[dict[str, Any]]]]:
    settings, resources = _WORKER["settings"], _WORKER["resources"]
    return [(job, run_job(job[0], job[1], settings, resources, job[2])) for job in group]


def _task_figure(config: str, *args: Any) -> Any:
    task = _WORKER["resources"].task(config)
    if isinstance(task, Exception):
        raise task
    return task.figure(*args)
