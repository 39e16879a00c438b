"""Inference speed and memory of SR methods, against the project's own fp32 eager path in the same run.

    python -m benchmarks.perf --methods difiisr,bicubic --sizes 64x64,256x192 --batch 1,4 \\
        --dtypes fp32,bf16 --variants eager,channels_last,compile --device cpu --random-weights \\
        --warmup 1 --repeat 5 --out perf.csv
    python -m benchmarks.perf --stages [--suite demo --methods ... --limit N --out stages.csv]

Every configuration (method x LR size WxH x batch x dtype x variant) runs in a fresh child process:
build, ``--warmup`` untimed calls, ``--repeat`` timed calls of ``method.upscale`` on a seeded random
LR batch. Reported: latency median and p90 (s), images/s (batch / median), peak memory and
``speedup`` = median latency of the fp32 eager configuration of the same method/size/batch divided by
this one's. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA (reset after the build) and, on
CPU, the child's peak resident set growth after the build (``VmHWM`` reset through
``/proc/self/clear_refs``, minus ``VmRSS`` at that moment; ``nan`` where /proc is not there).

For the ResShift family the child also times the three network calls inside each timed call (VQ
encode, UNet call(s), VQ decode; CUDA synchronised around each) and reports their share of the
latency. ``--dtypes`` are the sampler's precision policies (``sr.sampler.PRECISIONS``: fp32, bf16, fp16,
mixed; autocast on CUDA and CPU) and apply to the ResShift family; other methods run fp32 only.
``--stages`` runs the demo suite once in this process and prints the wall time by stage (SR, IQA,
detection, segmentation, other) so the slowest stage is visible.
``--stages --allocator-ab N`` instead runs it 2N times in child processes, alternating the start-up
allocator tuning on and off (``IRSR_MALLOC_TUNING``), and prints each run's wall, system time, minor
page faults and peak RSS plus the median ratios off/on. ``--official-repo PATH`` times the official
DifIISR sampler next to the project's (``benchmarks/official.py``; one child process per size);
``--tf32 off`` makes that comparison strict fp32 on CUDA (default on, PyTorch's own default).
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sr import cli
from sr.cli import cli_entry

COLUMNS = [
    "method",
    "size",
    "batch",
    "dtype",
    "variant",
    "device",
    "threads",
    "status",
    "latency_s",
    "p90_s",
    "images_per_s",
    "peak_mem_mb",
    "speedup",
    "vq_encode_s",
    "unet_s",
    "vq_decode_s",
    "vq_encode_share",
    "unet_share",
    "vq_decode_share",
    "repeats",
    "load_1min",
    "note",
]


def _proc_status(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0  # kB -> MB
    except OSError:
        pass
    return math.nan


def _reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark (Linux clear_refs '5'); returns the current RSS in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return math.nan
    return _proc_status("VmRSS")


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return math.nan


def time_parts(sampler, device) -> dict[str, float]:
    """Wrap a ResShiftSampler's VQ encode, UNet call and VQ decode (CUDA-synchronised around each); every
    call adds its seconds under ``vq_encode`` / ``unet`` / ``vq_decode`` in the returned dict (clear it per
    timed call)."""
    import torch

    comp: dict[str, float] = {}

    def timed(part, fn):
        def wrapper(*a, **k):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            if device.type == "cuda":
                torch.cuda.synchronize()
            comp[part] = comp.get(part, 0.0) + time.perf_counter() - t0
            return out

        return wrapper

    sampler._encode = timed("vq_encode", sampler._encode)
    sampler._model = timed("unet", sampler._model)
    sampler._decode = timed("vq_decode", sampler._decode)
    return comp


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in this process (the child side) and return its row."""
    import torch

    from sr.registry import load_method

    row: dict[str, Any] = {k: cfg.get(k, "") for k in ("method", "size", "batch", "dtype", "variant", "device")}
    row.update(threads=torch.get_num_threads(), repeats=cfg["repeat"], note="")
    device = torch.device(cfg["device"])
    torch.manual_seed(0)
    opts = {"random_weights": True} if cfg["random_weights"] else {}
    method = load_method(cfg["method"], device=cfg["device"], **opts)
    sampler = getattr(method, "sampler", None)
    from sr.sampler import ResShiftSampler

    is_resshift = isinstance(sampler, ResShiftSampler) and not getattr(method, "upsr", None)
    if cfg["dtype"] != "fp32" and not is_resshift:
        return {**row, "status": "skipped", "note": "only the ResShift family has precision policies"}
    if is_resshift:
        sampler.configure(precision=cfg["dtype"])  # fp32 rows too: the method's own default may be 'auto'
    if cfg["variant"] != "eager":
        if not is_resshift:
            return {**row, "status": "skipped", "note": f"{cfg['variant']} applies to the ResShift family only"}
        sampler.configure(channels_last="channels_last" in cfg["variant"], compile="compile" in cfg["variant"])
    if is_resshift and cfg.get("chop_bs"):
        sampler.chop_bs = int(cfg["chop_bs"])

    w, h = (int(v) for v in cfg["size"].split("x"))
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(int(cfg["batch"]), 3, h, w, generator=gen).to(device)

    comp: dict[str, float] = time_parts(sampler, device) if is_resshift else {}

    def call():
        out = method.upscale(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        rss0 = _reset_peak_rss()
    for _ in range(cfg["warmup"]):
        call()
    lat, parts = [], []
    for _ in range(cfg["repeat"]):
        comp.clear()
        t0 = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t0)
        parts.append(dict(comp))
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        peak = _proc_status("VmHWM") - rss0
    med = statistics.median(lat)
    p90 = sorted(lat)[min(len(lat) - 1, math.ceil(0.9 * len(lat)) - 1)]
    row.update(
        status="ok",
        latency_s=round(med, 5),
        p90_s=round(p90, 5),
        images_per_s=round(int(cfg["batch"]) / med, 4),
        peak_mem_mb=round(peak, 1),
    )
    if is_resshift:
        for part in ("vq_encode", "unet", "vq_decode"):
            v = statistics.median(p.get(part, 0.0) for p in parts)
            row[f"{part}_s"] = round(v, 5)
            row[f"{part}_share"] = round(v / med, 4)
        status = sampler.compile_status()
        if "compile" in cfg["variant"]:
            row["note"] = ";".join(f"{k}={v}" for k, v in status.items())
    return row


def _child(cfg: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.perf", "--child", json.dumps(cfg)]
    load = _load()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": "timeout", "note": f"over {timeout} s", "load_1min": load}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**cfg, "status": "error", "note": tail[:300], "load_1min": load}
    return {**json.loads(lines[-1]), "load_1min": load}


def run_grid(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for method in _split(args.methods):
        for size in _split(args.sizes):
            for batch in _split(args.batch):
                configs = [(d, v) for d in _split(args.dtypes) for v in _split(args.variants)]
                if ("fp32", "eager") not in configs:
                    configs.insert(0, ("fp32", "eager"))  # the reference of the speedup column
                ref = None
                for dtype, variant in configs:
                    cfg = {
                        "method": method,
                        "size": size,
                        "batch": int(batch),
                        "dtype": dtype,
                        "variant": variant,
                        "device": args.device,
                        "random_weights": args.random_weights,
                        "warmup": args.warmup,
                        "repeat": args.repeat,
                        "chop_bs": args.chop_bs,
                    }
                    row = measure(cfg) if args.in_process else _child(cfg, args.timeout)
                    row.setdefault("load_1min", _load())
                    if (dtype, variant) == ("fp32", "eager") and row.get("status") == "ok":
                        ref = row["latency_s"]
                    if row.get("status") == "ok" and ref:
                        row["speedup"] = round(ref / row["latency_s"], 3)
                    rows.append({k: row.get(k, "") for k in COLUMNS})
                    _print_row(rows[-1])
    return rows


def run_official(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    """``benchmarks.official.side_by_side`` per size, each in a child process (the official packages are
    imported by their top-level names; a child keeps them out of this process)."""
    rows = []
    for size in _split(args.sizes):
        cfg = {
            "official": {
                "repo": args.official_repo,
                "size": size,
                "device": args.device,
                "dtypes": _split(args.dtypes),
                "arch": args.official_arch,
                "warmup": args.warmup,
                "repeat": args.repeat,
                "tf32": args.tf32 == "on",
            }
        }
        if args.in_process:
            from benchmarks.official import side_by_side

            rows += side_by_side(**cfg["official"])
            continue
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.perf", "--child", json.dumps(cfg)],
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({"path": "all", "size": size, "device": args.device, "status": "error", "note": tail[:300]})
        else:
            rows += json.loads(lines[-1])
    return rows


def _print_row(row: dict[str, Any]) -> None:
    keys = [
        "method",
        "size",
        "batch",
        "dtype",
        "variant",
        "status",
        "latency_s",
        "p90_s",
        "images_per_s",
        "peak_mem_mb",
        "speedup",
        "vq_encode_share",
        "unet_share",
        "vq_decode_share",
        "load_1min",
        "note",
    ]
    print(" | ".join(f"{row.get(k, '')}" for k in keys), flush=True)


def write_csv(rows: list[dict[str, Any]], path: str | None, columns: list[str]) -> None:
    if not path:
        return
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- stages
STAGE_ORDER = ["sr", "iqa"]  # then the task stages, sorted


def run_stages(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    from benchmarks import timing
    from benchmarks.run import build_parser, execute, resolve_plan

    timing.sync_cuda(args.device.startswith("cuda"))
    out = args.stages_out or f"/tmp/perf_stages_{os.getpid()}"
    run_args = ["--suite", args.suite, "--out", out, "--device", args.device, "--quiet"]
    if args.methods:
        run_args += ["--methods", args.methods]
    if args.limit:
        run_args += ["--limit", str(args.limit)]
    if args.random_weights:
        run_args += ["--random-weights"]
    datasets, methods, settings = resolve_plan(build_parser().parse_args(run_args))
    timing.reset()
    load = _load()
    t0 = time.perf_counter()
    execute(datasets, methods, settings)
    wall = time.perf_counter() - t0
    tot = timing.totals()
    names = [s for s in STAGE_ORDER if s in tot] + sorted(set(tot) - set(STAGE_ORDER))
    rows = [
        {"stage": s, "seconds": round(tot[s][0], 2), "calls": tot[s][1], "share": round(tot[s][0] / wall, 4)}
        for s in names
    ]
    other = wall - sum(v for v, _ in tot.values())
    rows.append(
        {
            "stage": "other (data, PNG I/O, cache, model builds)",
            "seconds": round(other, 2),
            "calls": "",
            "share": round(other / wall, 4),
        }
    )
    rows.append({"stage": "total", "seconds": round(wall, 2), "calls": "", "share": 1.0})
    slowest = max(rows[:-1], key=lambda r: r["seconds"])
    print(
        f"demo suite {args.suite}: {len(methods)} methods x {len(datasets)} data sets, cache {out}, "
        f"load {load}; slowest stage: {slowest['stage']}"
    )
    return rows


AB_COLUMNS = ["run", "allocator", "status", "wall_s", "system_s", "user_s", "minor_faults", "max_rss_mb", "load_1min"]


def _stage_argv(args: cli.argparse.Namespace) -> list[str]:
    argv = ["--stages", "--suite", args.suite, "--device", args.device]
    if args.methods:
        argv += ["--methods", args.methods]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    return argv + (["--random-weights"] if args.random_weights else [])


def allocator_ab(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    """Run the ``--stages`` benchmark ``2 * args.allocator_ab`` times in child processes with the start-up
    allocator tuning on and off; the order flips every pair, so drift in the machine's load hits both."""
    import tempfile

    from sr.vocab import ENV_MALLOC_TUNING

    rows = []
    with tempfile.TemporaryDirectory(prefix="perf_ab_") as tmp:
        for i in range(args.allocator_ab):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                env = {**os.environ, ENV_MALLOC_TUNING: "1" if mode == "on" else "0"}
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.perf",
                    *_stage_argv(args),
                    "--stages-out",
                    str(Path(tmp) / f"{i}_{mode}"),
                ]
                load = _load()
                with open(Path(tmp) / "stderr.txt", "w+") as err:
                    t0 = time.perf_counter()
                    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
                    _, code, usage = os.wait4(proc.pid, 0)
                    wall = time.perf_counter() - t0
                    proc.returncode = os.waitstatus_to_exitcode(code)
                    err.seek(0)
                    tail = (err.read().strip().splitlines() or [""])[-1]
                rows.append(
                    {
                        "run": i,
                        "allocator": mode,
                        "status": "ok" if proc.returncode == 0 else f"error: {tail}",
                        "wall_s": round(wall, 2),
                        "system_s": round(usage.ru_stime, 2),
                        "user_s": round(usage.ru_utime, 2),
                        "minor_faults": usage.ru_minflt,
                        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
                        "load_1min": load,
                    }
                )
                print(" | ".join(str(rows[-1][c]) for c in AB_COLUMNS), flush=True)
    ok = [r for r in rows if r["status"] == "ok"]
    ratios = []
    for col in ("wall_s", "system_s", "minor_faults", "max_rss_mb"):
        on = [r[col] for r in ok if r["allocator"] == "on"]
        off = [r[col] for r in ok if r["allocator"] == "off"]
        if on and off and statistics.median(on):
            ratios.append(f"{col} {statistics.median(off) / statistics.median(on):.3f}")
    print(f"median ratio tuning off / on over {len(ok)} runs: {', '.join(ratios) or 'n/a (runs failed)'}")
    return rows


def _split(value) -> list[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()]


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default="difiisr,bicubic", help="comma-separated registered methods")
    p.add_argument("--sizes", default="64x64", help="LR sizes WxH, comma-separated (256x192 -> 1024x768 out)")
    p.add_argument("--batch", default="1", help="batch sizes, comma-separated")
    p.add_argument(
        "--dtypes",
        default="fp32",
        help="precision policies fp32,bf16,fp16,mixed (ResShift family; sr.sampler.PRECISIONS)",
    )
    p.add_argument(
        "--variants", default="eager", help="eager,channels_last,compile,channels_last+compile (ResShift family)"
    )
    p.add_argument("--chop-bs", type=int, default=None, help="override the sampler's tiles per batch")
    p.add_device()
    p.add_argument("--random-weights", action="store_true", help="untrained networks (no weight files)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--timeout", type=float, default=None, help="seconds per configuration (child process)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="no child processes (CPU peak memory is then the growth since the last reset, less meaningful)",
    )
    p.add_argument("--out", default=None, help="CSV path")
    p.add_argument("--stages", action="store_true", help="time the demo suite by stage instead")
    p.add_argument("--suite", default="demo")
    p.add_argument("--limit", type=cli.positive_int, default=None, help="--stages: samples per data set")
    p.add_argument("--stages-out", default=None, help="--stages: run directory (default: a fresh /tmp dir)")
    p.add_argument(
        "--allocator-ab",
        type=int,
        default=0,
        metavar="N",
        help="--stages: N pairs of child runs with the start-up allocator tuning on and off",
    )
    p.add_argument(
        "--official-repo",
        default=None,
        metavar="PATH",
        help="time the official DifIISR sampler (a zirui0625/DifIISR checkout) next to ours: same weights, "
        "LR and noise, at each --sizes; --dtypes are our precision policies",
    )
    p.add_argument(
        "--tf32",
        choices=("on", "off"),
        default="on",
        help="--official-repo on CUDA: TF32 in fp32 convolutions (on: PyTorch's default; off: strict fp32, "
        "the outputs then compare at CPU precision; see sr.runtime.set_tf32)",
    )
    p.add_argument(
        "--official-arch",
        choices=("full", "small"),
        default="full",
        help="--official-repo: the official networks, or reduced widths (CI)",
    )
    p.add_argument("--child", default=None, help=cli.argparse.SUPPRESS)
    return p


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        cfg = json.loads(args.child)
        if "official" in cfg:
            from benchmarks.official import side_by_side

            print(json.dumps(side_by_side(**cfg["official"])), flush=True)
        else:
            print(json.dumps(measure(cfg)), flush=True)
        return 0
    if args.stages:
        if args.methods == build_parser().get_default("methods"):
            args.methods = None  # the suite's own list
        if args.allocator_ab:
            rows = allocator_ab(args)
            print(markdown(rows, AB_COLUMNS))
            write_csv(rows, args.out, AB_COLUMNS)
            return 0
        rows = run_stages(args)
        print(markdown(rows, ["stage", "seconds", "calls", "share"]))
        write_csv(rows, args.out, ["stage", "seconds", "calls", "share"])
        return 0
    print(f"load average {os.getloadavg() if hasattr(os, 'getloadavg') else 'n/a'}", flush=True)
    if args.official_repo:
        from benchmarks.official import COLUMNS as OFFICIAL_COLUMNS

        rows = run_official(args)
        print(markdown(rows, OFFICIAL_COLUMNS))
        write_csv(rows, args.out, OFFICIAL_COLUMNS)
        return 0
    rows = run_grid(args)
    print(markdown(rows, [c for c in COLUMNS if c not in ("threads", "device")]))
    write_csv(rows, args.out, COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
