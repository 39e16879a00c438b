"""Time and memory measurement shared by every tool in benchmarks/speed/ (perf, official, gpu_check, train_cost,
memory, precision, degradation_perf, efficiency): the one timed-call loop, the CSV column names and units, the
common options, and the run of one configuration in a fresh child process (``run_child``, used by perf, memory
and efficiency; the child's side: ``add_child_option``, ``answer_child``).

    from benchmarks.speed import timing
    t = timing.time_calls(lambda: method.upscale(x), device, warmup=1, repeat=5)
    row = {timing.COL_LATENCY_MS: t.median_ms, timing.COL_PEAK_GIB: t.peak_gib}

Units of every tool's output: times in milliseconds (columns ``*_ms``), memory in GiB (``*_gib``); the
same concept has the same column name in every tool (the ``COL_*`` names below).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr import cli
from sr.ownership import add_overwrite_option, claim_file

# ------------------------------------------------------------------------------------------ shared columns
#: the kind of file the speed tools' ``--out`` is (``sr.ownership.claim_file``)
CSV_KIND = "speed table"
COL_SIZE = "size"  # LR frame WxH
COL_SIZE_OUT = "size_out"  # SR output WxH
COL_PRECISION = "precision"  # a precision policy: sr.sampler.PRECISIONS name, auto, or a JSON part mapping
COL_DEVICE = "device"
COL_THREADS = "threads"  # torch CPU threads
COL_STATUS = "status"  # ok | skipped | error: ... | timeout
COL_LATENCY_MS = "latency_ms"  # median of the timed calls
COL_P90_MS = "p90_ms"
COL_FRAMES_PER_S = "frames_per_s"
COL_PEAK_GIB = "peak_gib"  # peak memory above what was in use before the calls (see time_calls)
COL_SPEEDUP = "speedup"  # a reference configuration's latency / this one's
COL_MAX_ABS_DIFF = "max_abs_diff"  # of the [-1, 1] output against the reference output
COL_MEAN_ABS_DIFF = "mean_abs_diff"
COL_REPEATS = "repeats"  # timed calls behind the median
COL_LOAD = "load_1min"  # 1-minute load average when the measurement started
COL_NOTE = "note"
#: the three network calls of a ResShift-family sampler, timed by :func:`time_parts`: median ms per call
PARTS = ("vq_encode", "unet", "vq_decode")
COL_PART_MS = {part: f"{part}_ms" for part in PARTS}
#: units of every measurement column (anything else is a count, a ratio or a label)
UNIT_SUFFIXES = ("_ms", "_gib")


# ------------------------------------------------------------------------------------------ the timed loop
def synchronize(device) -> None:
    """Wait for the work queued on ``device`` (CUDA only; elsewhere calls are synchronous)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timed:
    """What :func:`time_calls` measured: per-call milliseconds of the timed calls, peak memory, last output."""

    times_ms: list[float]
    peak_gib: float = math.nan
    base_gib: float = math.nan  # memory in use before the calls (CUDA allocated / CPU RSS)
    peak_reset: bool = True  # False: the CPU peak mark could not be reset, the peak may predate the calls
    parts_ms: list[dict[str, float]] = field(default_factory=list)  # per timed call, see time_parts
    output: Any = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]

    def part_medians_ms(self) -> dict[str, float]:
        """Median ms of each part over the timed calls (0 for a call that did not run the part)."""
        keys = dict.fromkeys(k for p in self.parts_ms for k in p)
        return {k: statistics.median(p.get(k, 0.0) for p in self.parts_ms) for k in keys}


def time_calls(
    fn: Callable[[], Any],
    device,
    warmup: int = 1,
    repeat: int = 5,
    *,
    cpu_peak: bool = False,
    parts: dict[str, float] | None = None,
) -> Timed:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeat`` times timed, each timed call synchronised
    before and after on a CUDA ``device``.

    Peak memory covers warm-up and timed calls, above what was in use before them: on CUDA
    ``max_memory_allocated`` minus ``memory_allocated``; on CPU, with ``cpu_peak``, the process's peak
    resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) minus ``VmRSS`` -- meaningful in a
    fresh process only (buffers the allocator already holds are reused without growth), ``nan``
    otherwise. ``parts``: the dict :func:`time_parts` fills; cleared before each timed call and copied
    after it into ``Timed.parts_ms``.
    """
    import torch

    if repeat < 1 or warmup < 0:
        raise ValueError(f"need warmup >= 0 and repeat >= 1, got {warmup}, {repeat}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    timed = Timed(times_ms=[])
    if cuda:
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        timed.base_gib = base / 2**30
    elif cpu_peak:
        timed.peak_reset = _reset_peak_rss()
        timed.base_gib = _proc_status_gib("VmRSS")
    for _ in range(warmup):
        timed.output = fn()
    for _ in range(repeat):
        if parts is not None:
            parts.clear()
        if cuda:
            synchronize(device)
        t0 = time.perf_counter()
        timed.output = fn()
        if cuda:
            synchronize(device)
        timed.times_ms.append(1e3 * (time.perf_counter() - t0))
        if parts is not None:
            timed.parts_ms.append(dict(parts))
    if cuda:
        timed.peak_gib = (torch.cuda.max_memory_allocated(device) - base) / 2**30
    elif cpu_peak:
        timed.peak_gib = _proc_status_gib("VmHWM") - timed.base_gib
    return timed


def time_parts(sampler, device) -> dict[str, float]:
    """Wrap a ResShiftSampler's VQ encode, UNet call and VQ decode (CUDA-synchronised around each); every
    call adds its milliseconds under ``PARTS`` in the returned dict (pass it to ``time_calls(parts=...)``)."""
    comp: dict[str, float] = {}

    def timed(part, fn):
        def wrapper(*a, **k):
            synchronize(device)
            t0 = time.perf_counter()
            out = fn(*a, **k)
            synchronize(device)
            comp[part] = comp.get(part, 0.0) + 1e3 * (time.perf_counter() - t0)
            return out

        return wrapper

    sampler._encode = timed("vq_encode", sampler._encode)
    sampler._model = timed("unet", sampler._model)
    sampler._decode = timed("vq_decode", sampler._decode)
    return comp


def _proc_status_gib(field_name: str) -> float:
    """A ``kB`` field of ``/proc/self/status`` in GiB (``nan`` without /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return math.nan


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_child(module: str, payload: Any, timeout: float | None = None) -> tuple[Any, str, str]:
    """Run ``python -m <module> --child <payload as JSON>`` in a fresh process (a clean peak-memory mark, no state
    left by earlier configurations; this project's root first on ``PYTHONPATH``) and read back the JSON value of
    its last stdout line that holds one. Returns ``(value, "ok", "")``, or ``(None, "timeout" | "error", why)``."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", module, "--child", json.dumps(payload)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, "timeout", f"no result within {timeout} s"
    if proc.returncode == 0:
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(("{", "[")):
                with contextlib.suppress(ValueError):
                    return json.loads(line), "ok", ""
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return None, "error", f"exit {proc.returncode}: {tail[:300]}"


def add_child_option(p: cli.ArgumentParser) -> None:
    """``--child JSON``, hidden: how :func:`run_child` hands a tool its one configuration."""
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)


def answer_child(payload: str, child: Callable[[Any], Any]) -> int:
    """The child side of :func:`run_child`: ``child`` of the ``--child`` JSON ``payload``, printed as the one JSON
    line that run_child reads back; the exit status (0)."""
    print(json.dumps(child(json.loads(payload))), flush=True)
    return 0


def load_1min() -> float:
    """The 1-minute load average (``nan`` where the OS has none): on a shared machine, the context of a time."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return math.nan


# ------------------------------------------------------------------------------------------ shared options
def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(w, h)``, both >= 1."""
    w, sep, h = text.strip().lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected a frame size WxH such as 256x192, got {text!r}")
    return size


def sizes(text: str) -> list[str]:
    """``--sizes``: comma-separated LR frame sizes ``WxH``, normalised."""
    return ["{}x{}".format(*parse_size(item)) for item in cli.names(text)]


def precisions(text: str) -> list[str]:
    """``--precisions``: comma-separated precision policies (``sr.sampler.PRECISIONS`` names, ``auto``, or a
    JSON part mapping such as ``{"unet":"bf16","decode":"fp16"}``; commas inside braces do not split)."""
    from sr.sampler import resolve_precision

    items, depth, cur = [], 0, ""
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    items = [p for p in [*items, cur.strip()] if p]
    if not items:
        raise argparse.ArgumentTypeError(f"expected one or more precision policies, got {text!r}")
    for item in items:
        try:
            resolve_precision(policy(item), "cpu")
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(f"{item!r}: {exc}") from None
    return items


def precision(text: str) -> str:
    """One precision policy, checked as a ``--precisions`` entry (an option that takes a single policy)."""
    items = precisions(text)
    if len(items) != 1:
        raise argparse.ArgumentTypeError(f"expected one precision policy, got {text!r}")
    return items[0]


def policy(item: str) -> str | dict[str, str]:
    """One ``--precisions`` entry as ``ResShiftSampler.configure(precision=...)`` takes it."""
    if item.startswith("{"):
        try:
            return json.loads(item)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON mapping: {exc}") from None
    return item


def add_options(
    p: cli.ArgumentParser,
    *,
    sizes_default: str | None = None,
    precisions_default: str | None = None,
    warmup: int | None = None,
    repeat: int | None = None,
    out_csv: bool = True,
    arch: bool = False,
) -> None:
    """The options every measurement tool spells alike: ``--sizes``, ``--precisions``, ``--warmup``,
    ``--repeat``, ``--out`` (CSV), ``--arch`` (the tools that build DifIISR with random weights,
    ``benchmarks.speed.official.build_difiisr``). An argument left ``None`` (``out_csv=False``, ``arch=False``)
    leaves that option out."""
    if sizes_default is not None:
        p.add_argument("--sizes", type=sizes, default=sizes_default, help="LR frame sizes WxH, comma-separated")
    if precisions_default is not None:
        p.add_argument(
            "--precisions",
            type=precisions,
            default=precisions_default,
            help="precision policies, comma-separated: sr.sampler.PRECISIONS names, auto, or JSON part "
            'mappings such as {"unet":"bf16","decode":"fp16"} (the ResShift family)',
        )
    if warmup is not None:
        p.add_argument("--warmup", type=cli.non_negative_int, default=warmup, help="untimed calls first")
    if repeat is not None:
        p.add_argument("--repeat", type=cli.positive_int, default=repeat, help="timed calls (median reported)")
    if out_csv:
        p.add_argument("--out", type=cli.out_file, default=None, help="CSV path")
        add_overwrite_option(p)
    if arch:
        p.add_argument(
            "--arch",
            choices=("full", "small"),
            default="full",
            help="DifIISR networks: full (the official widths) or small (reduced widths, for CPU checks and CI)",
        )


def claim_out(args) -> None:
    """Before any measurement: refuse an ``--out`` file this tool did not write (``sr.ownership.claim_file``), unless
    ``--overwrite``."""
    if args.out:
        claim_file(args.out, CSV_KIND, overwrite=args.overwrite)


def write_csv(rows: list[dict[str, Any]], path, columns: list[str], overwrite: bool = False) -> None:
    """``rows`` as CSV with exactly ``columns`` (missing values empty) at ``path``, a file of ours
    (``sr.ownership.claim_file``: a user's file is refused unless ``overwrite``); nothing without a path."""
    if not path:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with claim_file(path, CSV_KIND, overwrite=overwrite).writing(path) as tmp:
        tmp.write_text(buf.getvalue())
    print(f"wrote {path}")


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
