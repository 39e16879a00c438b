"""Peak CPU memory of one huge frame through a diffusion SR method, tiled against untiled.

    python -m benchmarks.memory                                  # 4096x3072 HR (LR 1024x768), difiisr_demo
    python -m benchmarks.memory --lr-size 512x384 --configs tiled128,untiled --out mem.csv

Every configuration runs in a fresh child process (``python -m benchmarks.memory --child JSON``): it
imports torch and the harness, builds the method, makes a seeded random LR frame ``[1, C, h, w]``,
then records the baseline resident set (``VmRSS``), resets the kernel's peak-RSS mark
(``/proc/self/clear_refs`` ``5``) and calls ``method.upscale`` once. Reported ``peak_mb`` is
``VmHWM - baseline``: the memory the SR call itself needed on top of the imports, the weights and the
input. (If the mark cannot be reset, ``hwm_reset`` is false and the peak is still measured against the
same baseline; the build is far smaller than an untiled huge frame.)

Configurations (``--configs``, comma separated):

* ``default``: the method's own ``chop_size`` / ``chop_stride`` (difiisr_demo: 512 / 448 LR);
* ``tiled128``: ``chop_size`` 128, ``chop_stride`` 112 (LR pixels);
* ``untiled``: ``chop_size`` = ``chop_stride`` larger than the frame, one network call on the whole frame.

Before an untiled run the script estimates its peak from a smaller untiled probe
(``--probe-size``, scaled by the pixel ratio) and skips it, with the reason, when the estimate is above
``--max-untiled-gb`` (default 16) or the machine's available memory.

Output: a table on stdout and, with ``--out``, a CSV (columns :data:`COLUMNS`). Linux only (``/proc``).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sr import cli
from sr.cli import cli_entry

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [
    "method",
    "lr_size",
    "hr_size",
    "channels",
    "config",
    "chop_size",
    "chop_stride",
    "tiles",
    "status",
    "peak_mb",
    "baseline_mb",
    "hwm_reset",
    "out_mb",
    "wall_s",
    "threads",
    "note",
]
CONFIGS = {"default": None, "tiled128": (128, 112), "untiled": "untiled"}


def _status_mb(field: str) -> float:
    """A ``kB`` field of ``/proc/self/status`` in MB (``nan`` without /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _parse_size(text: str) -> tuple[int, int]:
    """``WxH`` -> (h, w)."""
    w, _, h = text.lower().partition("x")
    return int(h), int(w)


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
    baseline = _status_mb("VmRSS")
    reset = _reset_hwm()
    t0 = time.perf_counter()
    y = method.upscale(x)
    wall = time.perf_counter() - t0
    peak = _status_mb("VmHWM") - baseline
    assert y.shape == (1, c, h * method.scale, w * method.scale) and bool(torch.isfinite(y).all())
    return {
        "peak_mb": round(peak, 1),
        "baseline_mb": round(baseline, 1),
        "hwm_reset": reset,
        "out_mb": round(y.numel() * y.element_size() / 2**20, 1),
        "wall_s": round(wall, 2),
        "hr_size": f"{w * method.scale}x{h * method.scale}",
        "chop_size": size,
        "chop_stride": stride,
        "tiles": _tiles(h, w, size, stride) if size and max(h, w) > size else 1,
        "threads": torch.get_num_threads(),
    }


def run_child(cfg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """One configuration in a fresh Python process; returns the child's JSON (or status/note on failure)."""
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps(cfg)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "note": f"no result within {timeout} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"status": "error", "note": f"exit {proc.returncode}: {tail[0][:300]}"}
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


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
    return {"method": method, "lr_size": f"{w}x{h}", "channels": channels, "config": config, **row}


def _available_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    p.add_argument("--method", default="difiisr_demo", help="a registered method (default difiisr_demo)")
    p.add_argument("--lr-size", default="1024x768", help="LR frame WxH (default 1024x768 = 4096x3072 HR at x4)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--configs", default="default,tiled128,untiled", help=f"comma list of {', '.join(CONFIGS)}")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the child (default: torch's)")
    p.add_argument(
        "--max-untiled-gb",
        type=float,
        default=16.0,
        help="skip an untiled run whose estimated peak is above this (default 16)",
    )
    p.add_argument("--probe-size", default="256x192", help="untiled probe frame WxH used for the estimate")
    p.add_argument("--timeout", type=float, default=None, help="seconds per child")
    p.add_argument("--out", help="CSV path")
    p.add_argument("--child", help=cli.argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    h, w = _parse_size(args.lr_size)
    rows = []
    for config in [c.strip() for c in args.configs.split(",") if c.strip()]:
        if config == "untiled":
            ph, pw = _parse_size(args.probe_size)
            if ph * pw < h * w:
                probe = measure(args.method, ph, pw, "untiled", args.channels, args.threads, args.timeout)
                if probe["status"] == "ok":
                    est_gb = probe["peak_mb"] * (h * w) / (ph * pw) / 1024
                    limit = min(args.max_untiled_gb, _available_gb())
                    if est_gb > limit:
                        rows.append(
                            {
                                "method": args.method,
                                "lr_size": f"{w}x{h}",
                                "channels": args.channels,
                                "config": config,
                                "status": "skipped",
                                "note": f"estimated peak {est_gb:.1f} GB (probe {args.probe_size}: "
                                f"{probe['peak_mb']} MB) > limit {limit:.1f} GB",
                            }
                        )
                        print(_fmt(rows[-1], args.channels), flush=True)
                        continue
        row = measure(args.method, h, w, config, args.channels, args.threads, args.timeout)
        rows.append(row)
        print(_fmt(row, args.channels), flush=True)
    for row in rows:
        row["hr_size"] = f"{w * 4}x{h * 4}" if row.get("hr_size") is None else row["hr_size"]
    print()
    print(markdown(rows))
    if args.out:
        with open(args.out, "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            wr.writeheader()
            wr.writerows(rows)
    return 0 if all(r["status"] in ("ok", "skipped") for r in rows) else 1


def _fmt(row: dict[str, Any], channels: int) -> str:
    return (
        f"# {row['method']} {row['lr_size']} C={channels} {row['config']}: {row['status']} "
        f"peak {row.get('peak_mb', '-')} MB, {row.get('wall_s', '-')} s {row.get('note', '')}"
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = [
        "method",
        "lr_size",
        "hr_size",
        "config",
        "chop_size",
        "chop_stride",
        "tiles",
        "status",
        "peak_mb",
        "baseline_mb",
        "out_mb",
        "wall_s",
        "threads",
        "note",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
