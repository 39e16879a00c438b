"""Peak CPU memory of one huge frame through a diffusion SR method, tiled against untiled.

    python -m benchmarks.speed.memory                                  # 4096x3072 HR (LR 1024x768), difiisr_demo
    python -m benchmarks.speed.memory --sizes 512x384 --configs tiled128,untiled --out mem.csv

Every configuration (method x LR size x config) runs in a fresh child process (``python -m
benchmarks.speed.memory --child JSON``): it imports torch and the harness, builds the method, makes a seeded
random LR frame ``[1, C, h, w]`` and calls ``method.upscale`` once through
``benchmarks.speed.timing.time_calls`` (no warm-up, one timed call, CPU peak on): it records the baseline
resident set (``VmRSS``), resets the kernel's peak-RSS mark (``/proc/self/clear_refs`` ``5``) and
calls. Reported ``peak_gib`` is ``VmHWM - baseline``: the memory the SR call itself needed on top of
the imports, the weights and the input. (If the mark cannot be reset, ``peak_reset`` is false and the
peak is still measured against the same baseline; the build is far smaller than an untiled huge frame.)
Units and column names are ``benchmarks.speed.timing``'s: memory in GiB, time in ms.

Configurations (``--configs``, comma separated):

* ``default``: the method's own ``chop_size`` / ``chop_stride`` (difiisr_demo: 512 / 448 LR);
* ``tiled128``: ``chop_size`` 128, ``chop_stride`` 112 (LR pixels);
* ``untiled``: ``chop_size`` = ``chop_stride`` larger than the frame, one network call on the whole frame.

Before an untiled run the script estimates its peak from a smaller untiled probe
(``--probe-size``, scaled by the pixel ratio) and skips it, with the reason, when the estimate is above
``--max-untiled-gib`` (default 16) or the machine's available memory.

Output: a table on stdout and, with ``--out``, a CSV (columns :data:`COLUMNS`). Linux only (``/proc``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.speed import timing as T
from sr import cli
from sr.cli import cli_entry
from sr.vocab import COL_METHOD

COLUMNS = [
    COL_METHOD,
    T.COL_SIZE,
    T.COL_SIZE_OUT,
    "channels",
    "config",
    "chop_size",
    "chop_stride",
    "tiles",
    T.COL_STATUS,
    T.COL_PEAK_GIB,
    "baseline_gib",
    "peak_reset",
    "out_gib",
    T.COL_LATENCY_MS,
    T.COL_THREADS,
    T.COL_NOTE,
]
CONFIGS = {"default": None, "tiled128": (128, 112), "untiled": "untiled"}


def _tiles(h: int, w: int, size: int, stride: int) -> int:
    from sr.sampler import tile_starts

    return len(tile_starts(h, size, stride)) * len(tile_starts(w, size, stride))


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the fresh process: build, baseline, reset the peak mark, one ``upscale``."""
    import torch

    import sr

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    h, w, c = int(cfg["h"]), int(cfg["w"]), int(cfg["channels"])
    opts: dict[str, Any] = {}
    if cfg.get("chop_size"):
        opts = {"chop_size": int(cfg["chop_size"]), "chop_stride": int(cfg["chop_stride"])}
    method = sr.load_method(cfg["method"], **opts)
    x = torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(0))
    sampler = getattr(method, "sampler", None)
    size = getattr(sampler, "chop_size", None)
    stride = getattr(sampler, "chop_stride", None)
    t = T.time_calls(lambda: method.upscale(x), "cpu", warmup=0, repeat=1, cpu_peak=True)
    y = t.output
    assert y.shape == (1, c, h * method.scale, w * method.scale) and bool(torch.isfinite(y).all())
    return {
        T.COL_PEAK_GIB: round(t.peak_gib, 4),
        "baseline_gib": round(t.base_gib, 4),
        "peak_reset": t.peak_reset,
        "out_gib": round(y.numel() * y.element_size() / 2**30, 4),
        T.COL_LATENCY_MS: round(t.median_ms, 1),
        T.COL_SIZE_OUT: f"{w * method.scale}x{h * method.scale}",
        "chop_size": size,
        "chop_stride": stride,
        "tiles": _tiles(h, w, size, stride) if size and max(h, w) > size else 1,
        T.COL_THREADS: torch.get_num_threads(),
    }


def run_child(cfg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """One configuration in a fresh Python process (``benchmarks.speed.timing.run_child``): the child's row, or the
    status and note of its failure."""
    value, status, note = T.run_child("benchmarks.speed.memory", cfg, timeout)
    return {T.COL_STATUS: status, **value} if value is not None else {T.COL_STATUS: status, T.COL_NOTE: note}


def measure(
    method: str,
    h: int,
    w: int,
    config: str,
    channels: int = 1,
    threads: int | None = None,
    timeout: float | None = None,
    chop: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Peak memory of one configuration (``default`` | ``tiled128`` | ``untiled``) of an LR ``h x w`` frame;
    ``chop=(size, stride)`` instead runs those tile settings (``config`` is then only the row's label)."""
    if chop is None and config not in CONFIGS:
        raise ValueError(f"config must be one of {', '.join(CONFIGS)}, got {config!r}")
    spec = tuple(chop) if chop is not None else CONFIGS[config]
    cfg: dict[str, Any] = {"method": method, "h": h, "w": w, "channels": channels, "threads": threads}
    if spec == "untiled":
        cfg["chop_size"] = cfg["chop_stride"] = max(h, w) + 1
    elif spec:
        cfg["chop_size"], cfg["chop_stride"] = spec
    row = run_child(cfg, timeout)
    return {COL_METHOD: method, T.COL_SIZE: f"{w}x{h}", "channels": channels, "config": config, **row}


def _available_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m benchmarks.speed.memory", description=__doc__.splitlines()[0])
    p.add_argument("--methods", type=cli.names, default="difiisr_demo", help="registered methods, comma-separated")
    T.add_options(p, sizes_default="1024x768")  # 1024x768 LR = 4096x3072 HR at x4
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument(
        "--configs", type=cli.names_from(CONFIGS), default="default,tiled128,untiled", help=f"of {', '.join(CONFIGS)}"
    )
    p.add_argument(
        "--threads", type=cli.positive_int, default=None, help="torch threads in the child (default: torch's)"
    )
    p.add_argument(
        "--max-untiled-gib",
        type=float,
        default=16.0,
        help="skip an untiled run whose estimated peak is above this",
    )
    p.add_argument(
        "--probe-size", type=T.parse_size, default="256x192", help="untiled probe frame WxH used for the estimate"
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per child")
    T.add_child_option(p)
    args = p.parse_args(argv)
    if args.child:
        return T.answer_child(args.child, child)
    T.claim_out(args)  # a user's --out file is refused before anything is measured
    pw, ph = args.probe_size
    rows = []
    for method in args.methods:
        for size in args.sizes:
            w, h = T.parse_size(size)
            for config in args.configs:
                row = _skip_untiled(args, method, h, w, ph, pw) if config == "untiled" else None
                row = row or measure(method, h, w, config, args.channels, args.threads, args.timeout)
                rows.append(row)
                print(_fmt(row, args.channels), flush=True)
    print()
    print(T.markdown(rows, [c for c in COLUMNS if c not in ("channels", "peak_reset")]))
    T.write_csv(rows, args.out, COLUMNS, args.overwrite)
    return 0 if all(r[T.COL_STATUS] in ("ok", "skipped") for r in rows) else 1


def _skip_untiled(args, method: str, h: int, w: int, ph: int, pw: int) -> dict[str, Any] | None:
    """A ``skipped`` row when an untiled probe at ``--probe-size`` puts the estimated peak over the limit."""
    if ph * pw >= h * w:
        return None
    probe = measure(method, ph, pw, "untiled", args.channels, args.threads, args.timeout)
    if probe[T.COL_STATUS] != "ok":
        return None
    est = probe[T.COL_PEAK_GIB] * (h * w) / (ph * pw)
    limit = min(args.max_untiled_gib, _available_gib())
    if est <= limit:
        return None
    return {
        COL_METHOD: method,
        T.COL_SIZE: f"{w}x{h}",
        "channels": args.channels,
        "config": "untiled",
        T.COL_STATUS: "skipped",
        T.COL_NOTE: f"estimated peak {est:.1f} GiB (probe {pw}x{ph}: {probe[T.COL_PEAK_GIB]} GiB) "
        f"> limit {limit:.1f} GiB",
    }


def _fmt(row: dict[str, Any], channels: int) -> str:
    return (
        f"# {row[COL_METHOD]} {row[T.COL_SIZE]} C={channels} {row['config']}: {row[T.COL_STATUS]} "
        f"peak {row.get(T.COL_PEAK_GIB, '-')} GiB, {row.get(T.COL_LATENCY_MS, '-')} ms {row.get(T.COL_NOTE, '')}"
    )


if __name__ == "__main__":
    sys.exit(main())
