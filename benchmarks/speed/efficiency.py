"""The efficiency table: parameters, FLOPs, latency and peak memory of SR methods, per LR frame size, device named.

    python -m benchmarks.speed.efficiency --methods bicubic,difiisr_demo --sizes 64x64,80x60 --out efficiency.csv

Every (method, LR size) is measured in a fresh child process (``python -m benchmarks.speed.efficiency --child JSON``,
:func:`benchmarks.speed.timing.run_child`: a clean peak-memory mark, nothing left by the method before): it builds the
method as a run builds it (``sr.load_method`` with the device, weights directory and random-weights switch), makes a
seeded random LR frame ``[1, C, h, w]`` and

* counts the parameters of every network the method holds (its ``torch.nn.Module`` attributes, those of a
  descriptor's ``.model`` and of a method it calls, e.g. UPSR's prior; each parameter once);
* counts the FLOPs of one ``upscale`` call with torch's own counter (``torch.utils.flop_counter.FlopCounterMode``:
  matrix products, convolutions and attention, a multiply-add counted as 2 FLOPs; element-wise work is not counted);
* times ``--warmup`` + ``--repeat`` calls through :func:`benchmarks.speed.timing.time_calls` (median latency; peak
  memory above what was in use before the calls: CUDA ``max_memory_allocated``, CPU peak resident set).

``benchmarks.run --efficiency`` runs this command on the run's methods and writes ``<run>/efficiency.csv``
(:data:`sr.vocab.EFFICIENCY_FILE`), which the run's report and paper report render with the papers' own numbers
beside (``reports.efficiency``). The CSV is merged: a row of the same method, size and device replaces the old one,
and an ``ok`` row measured for the same method definition (column ``config``: a digest of its factory, scale and
options) is reused, not measured again. A method that cannot be built (weights missing) is a row whose ``status``
says why; a method built with random weights carries the ``random_weights`` flag.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.speed import timing as T
from sr import cli
from sr.cli import cli_entry
from sr.vocab import (
    COL_FLAGS,
    COL_GFLOPS,
    COL_METHOD,
    COL_PARAMS_M,
    EFFICIENCY_COLUMNS,
    OPT_RANDOM_WEIGHTS,
    join_flags,
)

COL_CONFIG = "config"  # digest of the method's definition (factory, scale, options): a reused row must match it


def device_name(device: str) -> str:
    """The device as the table names it: the GPU's model, or the CPU's model and torch's thread count."""
    import torch

    from sr.runtime import resolve_device

    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({model or 'unknown model'}, {torch.get_num_threads()} threads)"


def method_digest(method: str) -> str:
    """Digest of a registered method's definition: the same digest, the same networks and computation."""
    from sr.registry import method_spec

    spec = method_spec(method)
    text = json.dumps([spec.factory, spec.scale, spec.options], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def networks(obj: Any, seen: set[int] | None = None) -> list:
    """The ``torch.nn.Module`` objects an SR method holds: its Module attributes, a descriptor's ``.model`` (spandrel)
    and, recursively, those of an SR method it holds (UPSR's prior)."""
    import torch

    from sr.base import SRMethod

    seen = set() if seen is None else seen
    found = []
    for value in vars(obj).values():
        module = value if isinstance(value, torch.nn.Module) else getattr(value, "model", None)
        if isinstance(module, torch.nn.Module) and id(module) not in seen:
            seen.add(id(module))
            found.append(module)
        elif isinstance(value, SRMethod) and id(value) not in seen:
            seen.add(id(value))
            found += networks(value, seen)
    return found


def parameter_count(modules: list) -> int:
    """Parameters of ``modules``, each tensor once (a network shared by two holders counts once)."""
    params = {id(p): p.numel() for m in modules for p in m.parameters()}
    return sum(params.values())


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the fresh process: build the method as a run does, then :func:`measure_method`."""
    import sr
    from sr.errors import UserError

    try:
        method = sr.load_method(
            cfg["method"],
            device=cfg["device"],
            weights_dir=cfg.get("weights_dir"),
            random_weights=bool(cfg.get("random_weights")),
        )
    except UserError as exc:
        return {T.COL_STATUS: "error", T.COL_NOTE: str(exc).splitlines()[0][:300]}
    size = (int(cfg["w"]), int(cfg["h"]))
    return measure_method(method, size, int(cfg["channels"]), int(cfg["warmup"]), int(cfg["repeat"]))


def measure_method(method, size: tuple[int, int], channels: int = 1, warmup: int = 1, repeat: int = 3) -> dict:
    """Parameters, FLOPs of one call, latency and peak memory of a built SR method on a seeded random LR frame
    ``[1, channels, h, w]`` (``size`` = (w, h)); the efficiency row's measured columns."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if method.needs_reference() or method.reads_ids:
        return {T.COL_STATUS: "skipped", T.COL_NOTE: "not a computation on the LR frame (reference row / outputs)"}
    w, h = size
    x = torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(0)).to(method.device)
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            method.upscale(x)
        t = T.time_calls(lambda: method.upscale(x), method.device, warmup=warmup, repeat=repeat, cpu_peak=True)
    return {
        T.COL_STATUS: "ok",
        T.COL_SIZE_OUT: f"{w * method.scale}x{h * method.scale}",
        T.COL_THREADS: torch.get_num_threads(),
        COL_PARAMS_M: parameter_count(networks(method)) / 1e6,
        COL_GFLOPS: counter.get_total_flops() / 1e9,
        T.COL_LATENCY_MS: round(t.median_ms, 3),
        T.COL_PEAK_GIB: round(t.peak_gib, 4),
        T.COL_REPEATS: len(t.times_ms),
        COL_FLAGS: join_flags(method.flags),
    }


def measure(method: str, size: str, cfg: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """One (method, LR size ``WxH``) in a fresh process: its efficiency row (``status`` says why when not ``ok``)."""
    w, h = T.parse_size(size)
    value, status, note = T.run_child("benchmarks.speed.efficiency", {**cfg, "method": method, "h": h, "w": w}, timeout)
    row = value if value is not None else {T.COL_STATUS: status, T.COL_NOTE: note}
    return {COL_METHOD: method, T.COL_SIZE: size, **row}


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of an existing efficiency.csv (none when absent)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def measure_all(
    methods: list[str],
    sizes: list[str],
    device: str = "auto",
    *,
    out: Path | None = None,
    weights_dir: str | None = None,
    random_weights: bool = False,
    channels: int = 1,
    warmup: int = 1,
    repeat: int = 3,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Every (method, size) row; with ``out``, merged into that CSV (rows of other methods, sizes or devices kept, an
    ``ok`` row of the same method definition, size and device reused)."""
    from sr.runtime import resolve_device

    device = resolve_device(device)
    name = device_name(device)
    old = read_rows(out) if out else []
    cfg = {"device": device, "weights_dir": weights_dir, "random_weights": random_weights, "channels": channels}
    cfg |= {"warmup": warmup, "repeat": repeat}
    rows = []
    for method in methods:
        digest = method_digest(method)
        for size in sizes:
            key = (method, size, name)
            reuse = [
                r
                for r in old
                if (r[COL_METHOD], r[T.COL_SIZE], r[T.COL_DEVICE]) == key
                and r[T.COL_STATUS] == "ok"
                and r.get(COL_CONFIG) == digest
            ]
            row = reuse[0] if reuse else {**measure(method, size, cfg, timeout), T.COL_DEVICE: name, COL_CONFIG: digest}
            rows.append(row)
            print(
                f"# efficiency {method} {size} on {name}: {row[T.COL_STATUS]}{' (reused)' if reuse else ''} "
                f"{row.get(T.COL_LATENCY_MS, '')} ms {row.get(T.COL_NOTE) or ''}",
                file=sys.stderr,
                flush=True,
            )
    if out:
        keys = {(r[COL_METHOD], r[T.COL_SIZE], r[T.COL_DEVICE]) for r in rows}
        kept = [r for r in old if (r[COL_METHOD], r[T.COL_SIZE], r[T.COL_DEVICE]) not in keys]
        T.write_csv(kept + rows, out, list(EFFICIENCY_COLUMNS))
    return rows


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m benchmarks.speed.efficiency", description=__doc__.splitlines()[0])
    p.add_argument(
        "--methods", type=cli.names, default="bicubic,difiisr_demo", help="registered methods, comma-separated"
    )
    T.add_options(p, sizes_default="256x256", warmup=1, repeat=3)  # LR 256x256 -> 1024x1024 at x4
    p.add_device()
    p.add_weights_dir()
    p.add_argument(OPT_RANDOM_WEIGHTS, action="store_true", help="build methods whose weights are missing at random")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3), help="channels of the LR frame")
    p.add_argument("--timeout", type=float, default=None, help="seconds per (method, size) child")
    T.add_child_option(p)
    args = p.parse_args(argv)
    if args.child:
        return T.answer_child(args.child, child)
    from sr.registry import check_method

    for method in args.methods:
        check_method(method)  # an unknown name: one error line before any measurement
    rows = measure_all(
        args.methods,
        args.sizes,
        args.device,
        out=Path(args.out) if args.out else None,
        weights_dir=args.weights_dir and str(args.weights_dir),
        random_weights=args.random_weights,
        channels=args.channels,
        warmup=args.warmup,
        repeat=args.repeat,
        timeout=args.timeout,
    )
    print(T.markdown(rows, [c for c in EFFICIENCY_COLUMNS if c != COL_CONFIG]))
    return 0 if all(r[T.COL_STATUS] in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
