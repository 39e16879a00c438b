"""Inference speed and memory of SR methods, against the project's own fp32 eager path in the same run.

    python -m benchmarks.speed.perf --methods difiisr,bicubic --sizes 64x64,256x192 --batch 1,4 \\
        --precisions fp32,bf16 --variants eager,channels_last,compile --device cpu --random-weights \\
        --warmup 1 --repeat 5 --out perf.csv
    python -m benchmarks.speed.perf --stages [--suite demo --methods ... --limit N --out stages.csv]

Every configuration (method x LR size WxH x batch x precision x variant) runs in a fresh child process:
build, then ``benchmarks.speed.timing.time_calls`` (``--warmup`` untimed calls, ``--repeat`` timed calls of
``method.upscale`` on a seeded random LR batch). Reported (units and column names of
``benchmarks.speed.timing``): latency median and p90 (ms), frames/s (batch / median), peak memory (GiB) and
``speedup`` = median latency of the fp32 eager configuration of the same method/size/batch divided by
this one's. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and, on CPU, the child's peak
resident set growth (``VmHWM`` reset through ``/proc/self/clear_refs``, minus ``VmRSS`` at that
moment; ``nan`` where /proc is not there), both above what the build left in use.

For the ResShift family the child also times the three network calls inside each timed call (VQ
encode, UNet call(s), VQ decode; CUDA synchronised around each) and reports their share of the
latency. ``--precisions`` are the sampler's precision policies (``sr.sampler.PRECISIONS``: fp32, bf16,
fp16, mixed, or a JSON part mapping; autocast on CUDA and CPU) and apply to the ResShift family; other
methods run fp32 only.
``--stages`` runs the demo suite once in this process and prints the wall time by stage (frame loading,
SR, IQA, PNG writing, detection, segmentation, the tasks' bootstrap replicates, other) so the slowest stage
is visible; with the runner's overlapped frame pipeline (``--prefetch N``, passed on to the run) ``load``
and ``write`` are only the time the SR thread waited for them.
``--stages --allocator-ab N`` instead runs it 2N times in child processes, alternating the start-up
allocator tuning on and off (``IRSR_MALLOC_TUNING``), and prints each run's wall, system and user time,
minor page faults and peak RSS plus the median ratios off/on; ``--stages --prefetch-ab N`` does the same
with the frame pipeline sequential (``--prefetch 0``) and overlapped (``--prefetch``).
``--official-repo PATH`` times the official DifIISR sampler next to the project's (``benchmarks/speed/official.py``;
one child process per size); ``--tf32 off`` makes that comparison strict fp32 on CUDA (default on, PyTorch's
own default).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.background import DEFAULT_PREFETCH
from benchmarks.speed import timing as T
from benchmarks.speed.timing import claim_out, load_1min, markdown, write_csv
from sr import cli
from sr.cli import cli_entry
from sr.vocab import COL_METHOD, OPT_DEGRADATIONS, OPT_DEVICE, OPT_PREFETCH, OPT_RANDOM_WEIGHTS

COLUMNS = [
    COL_METHOD,
    T.COL_SIZE,
    "batch",
    T.COL_PRECISION,
    "variant",
    T.COL_DEVICE,
    T.COL_THREADS,
    T.COL_STATUS,
    T.COL_LATENCY_MS,
    T.COL_P90_MS,
    T.COL_FRAMES_PER_S,
    T.COL_PEAK_GIB,
    T.COL_SPEEDUP,
    *T.COL_PART_MS.values(),
    *(f"{part}_share" for part in T.PARTS),
    T.COL_REPEATS,
    T.COL_LOAD,
    T.COL_NOTE,
]


DEFAULT_METHODS = ["difiisr", "bicubic"]
VARIANTS = ("eager", "channels_last", "compile", "channels_last+compile")


def _batches(text: str) -> list[int]:
    """``--batch``: comma-separated batch sizes >= 1."""
    return [cli.positive_int(item) for item in cli.names(text)]


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in this process (the child side) and return its row."""
    import torch

    from sr.registry import load_method

    row: dict[str, Any] = {k: cfg.get(k, "") for k in (COL_METHOD, T.COL_SIZE, "batch", T.COL_PRECISION, "variant")}
    row.update({T.COL_DEVICE: cfg["device"], T.COL_THREADS: torch.get_num_threads(), T.COL_REPEATS: cfg["repeat"]})
    device = torch.device(cfg["device"])
    torch.manual_seed(0)
    opts = {"random_weights": True} if cfg["random_weights"] else {}
    method = load_method(cfg[COL_METHOD], device=cfg["device"], **opts)
    sampler = getattr(method, "sampler", None)
    from sr.sampler import ResShiftSampler

    is_resshift = isinstance(sampler, ResShiftSampler) and not getattr(method, "upsr", None)
    precision = cfg[T.COL_PRECISION]
    if precision != "fp32" and not is_resshift:
        return {**row, T.COL_STATUS: "skipped", T.COL_NOTE: "only the ResShift family has precision policies"}
    if is_resshift:
        sampler.configure(precision=T.policy(precision))  # fp32 rows too: the method's own default may be 'auto'
    if cfg["variant"] != "eager":
        if not is_resshift:
            note = f"{cfg['variant']} applies to the ResShift family only"
            return {**row, T.COL_STATUS: "skipped", T.COL_NOTE: note}
        sampler.configure(channels_last="channels_last" in cfg["variant"], compile="compile" in cfg["variant"])
    if is_resshift and cfg.get("chop_bs"):
        sampler.chop_bs = int(cfg["chop_bs"])

    w, h = T.parse_size(cfg[T.COL_SIZE])
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(int(cfg["batch"]), 3, h, w, generator=gen).to(device)
    parts = T.time_parts(sampler, device) if is_resshift else None
    t = T.time_calls(lambda: method.upscale(x), device, cfg["warmup"], cfg["repeat"], cpu_peak=True, parts=parts)
    med = t.median_ms
    row.update(
        {
            T.COL_STATUS: "ok",
            T.COL_LATENCY_MS: round(med, 3),
            T.COL_P90_MS: round(t.p90_ms, 3),
            T.COL_FRAMES_PER_S: round(1e3 * int(cfg["batch"]) / med, 4),
            T.COL_PEAK_GIB: round(t.peak_gib, 4),
            T.COL_NOTE: "" if t.peak_reset else "peak RSS mark not reset: the peak may include the build",
        }
    )
    if is_resshift:
        for part, ms in t.part_medians_ms().items():
            row[T.COL_PART_MS[part]] = round(ms, 3)
            row[f"{part}_share"] = round(ms / med, 4)
        if "compile" in cfg["variant"]:
            row[T.COL_NOTE] = ";".join(f"{k}={v}" for k, v in sampler.compile_status().items())
    return row


def _child(cfg: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """One configuration in a fresh child process (``T.run_child``; its side there: :func:`_answer_child`): the
    child's row, or the configuration with the status and note of its failure; the load average either way."""
    load = load_1min()
    row, status, note = T.run_child("benchmarks.speed.perf", cfg, timeout)
    if row is None:
        return {**cfg, T.COL_STATUS: status, T.COL_NOTE: note, T.COL_LOAD: load}
    return {**row, T.COL_LOAD: load}


def run_grid(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for method in args.methods or DEFAULT_METHODS:
        for size in args.sizes:
            for batch in args.batch:
                configs = [(p, v) for p in args.precisions for v in args.variants]
                if ("fp32", "eager") not in configs:
                    configs.insert(0, ("fp32", "eager"))  # the reference of the speedup column
                ref = None
                for precision, variant in configs:
                    cfg = {
                        COL_METHOD: method,
                        T.COL_SIZE: size,
                        "batch": batch,
                        T.COL_PRECISION: precision,
                        "variant": variant,
                        "device": args.device,
                        "random_weights": args.random_weights,
                        "warmup": args.warmup,
                        "repeat": args.repeat,
                        "chop_bs": args.chop_bs,
                    }
                    row = measure(cfg) if args.in_process else _child(cfg, args.timeout)
                    row.setdefault(T.COL_LOAD, load_1min())
                    if (precision, variant) == ("fp32", "eager") and row.get(T.COL_STATUS) == "ok":
                        ref = row[T.COL_LATENCY_MS]
                    if row.get(T.COL_STATUS) == "ok" and ref:
                        row[T.COL_SPEEDUP] = round(ref / row[T.COL_LATENCY_MS], 3)
                    rows.append({k: row.get(k, "") for k in COLUMNS})
                    _print_row(rows[-1])
    return rows


def run_official(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    """``benchmarks.speed.official.side_by_side`` per size, each in a child process (the official packages are
    imported by their top-level names; a child keeps them out of this process)."""
    rows = []
    for size in args.sizes:
        cfg = {
            "official": {
                "repo": args.official_repo,
                "size": size,
                "device": args.device,
                "precisions": args.precisions,
                "arch": args.arch,
                "warmup": args.warmup,
                "repeat": args.repeat,
                "tf32": args.tf32 == "on",
            }
        }
        if args.in_process:
            from benchmarks.speed.official import side_by_side

            rows += side_by_side(**cfg["official"])
            continue
        side, status, note = T.run_child("benchmarks.speed.perf", cfg, args.timeout)
        if side is None:
            rows.append(
                {"path": "all", T.COL_SIZE: size, T.COL_DEVICE: args.device, T.COL_STATUS: status, T.COL_NOTE: note}
            )
        else:
            rows += side
    return rows


def _print_row(row: dict[str, Any]) -> None:
    hidden = (T.COL_DEVICE, T.COL_THREADS, T.COL_REPEATS, *T.COL_PART_MS.values())
    print(" | ".join(f"{row.get(k, '')}" for k in COLUMNS if k not in hidden), flush=True)


# ---------------------------------------------------------------------------------------------- stages
STAGE_ORDER = ["load", "sr", "iqa", "write"]  # then the task stages and "replicates", sorted
STAGE_COLUMNS = ["stage", "wall_ms", "cpu_ms", "calls", "share"]


def run_stages(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    """Run the suite once in this process and time it by stage; the run folder is ``--stages-out`` (kept, so a
    second call measures a cached run) or a temporary one (removed afterwards)."""
    if args.stages_out:
        return _run_stages(args, args.stages_out)
    with tempfile.TemporaryDirectory(prefix="perf_stages_") as out:
        return _run_stages(args, out)


def _run_stages(args: cli.argparse.Namespace, out: str) -> list[dict[str, Any]]:
    from benchmarks.resources import Resources
    from benchmarks.run import build_parser, execute, resolve_plan
    from benchmarks.stages import SUBSTAGE_IQA, Stages

    run_args = ["--suite", args.suite, "--out", out, OPT_DEVICE, args.device, "--quiet"]
    if args.methods:
        run_args += ["--methods", ",".join(args.methods)]
    if args.limit:
        run_args += ["--limit", str(args.limit)]
    if args.random_weights:
        run_args += [OPT_RANDOM_WEIGHTS]
    run_args += [OPT_PREFETCH, str(args.prefetch)]
    datasets, methods, settings = resolve_plan(build_parser().parse_args(run_args))
    resources = Resources.for_settings(settings, Stages(sync_cuda=args.device.startswith("cuda")))
    load = load_1min()
    t0, c0 = time.perf_counter(), time.process_time()
    execute(datasets, methods, settings, resources=resources)
    wall, cpu_all = time.perf_counter() - t0, time.process_time() - c0
    tot, cpu = resources.stages.totals(), resources.stages.cpu_totals()
    parts = sorted((s for s in tot if s.startswith(SUBSTAGE_IQA)), key=lambda s: -tot[s][0])  # within "iqa"
    names = [s for s in STAGE_ORDER if s in tot] + sorted(set(tot) - set(STAGE_ORDER) - set(parts))
    if "iqa" in names:
        names[names.index("iqa") + 1 : names.index("iqa") + 1] = parts
    rows = [
        {
            "stage": s,
            "wall_ms": round(1e3 * tot[s][0]),
            "cpu_ms": round(1e3 * cpu[s]),
            "calls": tot[s][1],
            "share": round(tot[s][0] / wall, 4),
        }
        for s in names
    ]
    other = wall - sum(v for s, (v, _) in tot.items() if s not in parts)
    other_cpu = cpu_all - sum(v for s, v in cpu.items() if s not in parts)
    rows.append(
        {
            "stage": "other (cache, model and task set-up)",
            "wall_ms": round(1e3 * other),
            "cpu_ms": round(1e3 * other_cpu),
            "calls": "",
            "share": round(other / wall, 4),
        }
    )
    total = {"stage": "total", "wall_ms": round(1e3 * wall), "cpu_ms": round(1e3 * cpu_all), "calls": "", "share": 1.0}
    rows.append(total)
    slowest = max((r for r in rows[:-1] if r["stage"] not in parts), key=lambda r: r["wall_ms"])
    print(
        f"demo suite {args.suite}: {len(methods)} methods x {len(datasets)} data sets, run folder {out}, "
        f"load {load}; slowest stage: {slowest['stage']}"
    )
    return rows


AB_MEASURES = [
    T.COL_STATUS,
    "wall_ms",
    "system_ms",
    "user_ms",
    "minor_faults",
    "max_rss_gib",
    T.COL_LOAD,
]


def ab_columns(setting: str) -> list[str]:
    """Columns of an A/B of the ``--stages`` benchmark over ``setting`` (``allocator`` or ``prefetch``)."""
    return ["run", setting, *AB_MEASURES]


def _stage_argv(args: cli.argparse.Namespace) -> list[str]:
    argv = ["--stages", "--suite", args.suite, OPT_DEVICE, args.device]
    if args.methods:
        argv += ["--methods", ",".join(args.methods)]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    return argv + ([OPT_RANDOM_WEIGHTS] if args.random_weights else [])


def stages_ab(
    args: cli.argparse.Namespace, pairs: int, setting: str, modes: dict[str, tuple[dict[str, str], list[str]]]
) -> list[dict[str, Any]]:
    """Run the ``--stages`` benchmark ``pairs`` times in each of two ``modes`` (value of ``setting`` -> (environment,
    extra arguments) of the child), each run a child process with a fresh run folder; the order flips every pair,
    so drift in the machine's load hits both. Prints the median ratios first mode / second mode."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="perf_ab_") as tmp:
        for i in range(pairs):
            for mode in list(modes) if i % 2 == 0 else list(modes)[::-1]:
                env, extra = modes[mode]
                cmd = [sys.executable, "-m", "benchmarks.speed.perf", *_stage_argv(args), *extra]
                cmd += ["--stages-out", str(Path(tmp) / f"{i}_{mode}")]
                load = load_1min()
                with open(Path(tmp) / "stderr.txt", "w+") as err:
                    t0 = time.perf_counter()
                    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)
                    _, code, usage = os.wait4(proc.pid, 0)
                    wall = time.perf_counter() - t0
                    proc.returncode = os.waitstatus_to_exitcode(code)
                    err.seek(0)
                    tail = (err.read().strip().splitlines() or [""])[-1]
                rows.append(
                    {
                        "run": i,
                        setting: mode,
                        T.COL_STATUS: "ok" if proc.returncode == 0 else f"error: {tail}",
                        "wall_ms": round(1e3 * wall),
                        "system_ms": round(1e3 * usage.ru_stime),
                        "user_ms": round(1e3 * usage.ru_utime),
                        "minor_faults": usage.ru_minflt,
                        "max_rss_gib": round(usage.ru_maxrss / 2**20, 4),  # ru_maxrss is in KiB
                        T.COL_LOAD: load,
                    }
                )
                print(" | ".join(str(rows[-1][c]) for c in ab_columns(setting)), flush=True)
    ok = [r for r in rows if r[T.COL_STATUS] == "ok"]
    first, second = modes
    ratios = []
    for col in ("wall_ms", "cpu (user + system)", "system_ms", "minor_faults", "max_rss_gib"):
        values = {m: [_ab_value(r, col) for r in ok if r[setting] == m] for m in modes}
        if values[first] and values[second] and statistics.median(values[second]):
            ratios.append(f"{col} {statistics.median(values[first]) / statistics.median(values[second]):.3f}")
    summary = ", ".join(ratios) or "n/a (runs failed)"
    print(f"median ratio {setting} {first} / {setting} {second} over {len(ok)} runs: {summary}")
    return rows


def _ab_value(row: dict[str, Any], col: str) -> float:
    return row["user_ms"] + row["system_ms"] if col.startswith("cpu") else row[col]


def allocator_ab(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    """``stages_ab`` with the start-up allocator tuning off and on (``IRSR_MALLOC_TUNING``)."""
    from sr.vocab import ENV_MALLOC_TUNING

    modes = {"off": ({ENV_MALLOC_TUNING: "0"}, []), "on": ({ENV_MALLOC_TUNING: "1"}, [])}
    return stages_ab(args, args.allocator_ab, "allocator", modes)


def prefetch_ab(args: cli.argparse.Namespace) -> list[dict[str, Any]]:
    """``stages_ab`` with the runner's frame pipeline sequential (``--prefetch 0``) and at ``--prefetch``."""
    modes = {"0": ({}, [OPT_PREFETCH, "0"]), str(args.prefetch): ({}, [OPT_PREFETCH, str(args.prefetch)])}
    return stages_ab(args, args.prefetch_ab, "prefetch", modes)


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.speed.perf", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--methods",
        type=cli.names,
        default=None,
        help=f"registered methods, comma-separated (default: {','.join(DEFAULT_METHODS)}; --stages: the suite's own)",
    )
    p.add_argument("--batch", type=_batches, default="1", help="batch sizes, comma-separated")
    T.add_options(p, sizes_default="64x64", precisions_default="fp32", warmup=1, repeat=5, arch=True)
    p.add_argument(
        "--variants",
        type=cli.names_from(VARIANTS),
        default="eager",
        help=f"of {','.join(VARIANTS)}, comma-separated (ResShift family)",
    )
    p.add_argument("--chop-bs", type=cli.positive_int, default=None, help="override the sampler's tiles per batch")
    p.add_device()
    p.add_argument(OPT_RANDOM_WEIGHTS, action="store_true", help="untrained networks (no weight files)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per configuration (child process)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="no child processes (CPU peak memory is then the growth since the last reset, less meaningful)",
    )
    p.add_argument("--stages", action="store_true", help="time the demo suite by stage instead")
    p.add_argument("--suite", default="demo")
    p.add_argument("--limit", type=cli.positive_int, default=None, help="--stages: samples per data set")
    p.add_argument(
        "--stages-out", default=None, help="--stages: run directory, kept (default: a temporary one, removed after)"
    )
    p.add_argument(
        "--allocator-ab",
        type=cli.non_negative_int,
        default=0,
        metavar="N",
        help="--stages: N pairs of child runs with the start-up allocator tuning on and off",
    )
    p.add_argument(
        OPT_PREFETCH,
        type=cli.non_negative_int,
        default=DEFAULT_PREFETCH,
        metavar="N",
        help="--stages: the run's frames decoded ahead / PNGs written behind (benchmarks.run " + OPT_PREFETCH + ")",
    )
    p.add_argument(
        "--prefetch-ab",
        type=cli.non_negative_int,
        default=0,
        metavar="N",
        help=f"--stages: N pairs of child runs with {OPT_PREFETCH} 0 (sequential) and {OPT_PREFETCH} N",
    )
    p.add_argument(
        "--official-repo",
        default=None,
        metavar="PATH",
        help="time the official DifIISR sampler (a zirui0625/DifIISR checkout) next to ours: same weights, "
        "LR and noise, at each --sizes and --arch; --precisions are the project's policies",
    )
    p.add_argument(
        "--tf32",
        choices=("on", "off"),
        default="on",
        help="--official-repo on CUDA: TF32 in fp32 convolutions (on: PyTorch's default; off: strict fp32, "
        "the outputs then compare at CPU precision; see sr.runtime.set_tf32)",
    )
    p.add_argument(
        OPT_DEGRADATIONS,
        default=None,
        metavar="LIST",
        help="instead: time these degradations per frame at each --sizes (LR; HR = x4) as a ratio to the bicubic "
        "path (benchmarks/speed/degradation_perf.py)",
    )
    T.add_child_option(p)
    return p


def _answer_child(cfg: dict[str, Any]) -> Any:
    """The child side of ``T.run_child`` (:func:`_child` is the parent side): the official side-by-side of
    ``cfg["official"]``, else one measurement."""
    if "official" in cfg:
        from benchmarks.speed.official import side_by_side

        return side_by_side(**cfg["official"])
    return measure(cfg)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return T.answer_child(args.child, _answer_child)
    claim_out(args)  # a user's --out file is refused before anything is measured
    if args.stages:
        for pairs, ab, setting in (
            (args.allocator_ab, allocator_ab, "allocator"),
            (args.prefetch_ab, prefetch_ab, "prefetch"),
        ):
            if pairs:
                rows = ab(args)
                print(markdown(rows, ab_columns(setting)))
                write_csv(rows, args.out, ab_columns(setting), args.overwrite)
                return 0
        rows = run_stages(args)
        print(markdown(rows, STAGE_COLUMNS))
        write_csv(rows, args.out, STAGE_COLUMNS, args.overwrite)
        return 0
    print(f"load average (1 min) {load_1min()}", flush=True)
    if args.degradations:
        from benchmarks.speed.degradation_perf import COLUMNS as DEGRADATION_COLUMNS
        from benchmarks.speed.degradation_perf import degradation_times
        from downstream.degradations import parse_list

        rows = degradation_times(parse_list(args.degradations), args.sizes, warmup=args.warmup, repeat=args.repeat)
        print(markdown(rows, DEGRADATION_COLUMNS))
        write_csv(rows, args.out, DEGRADATION_COLUMNS, args.overwrite)
        return 0
    if args.official_repo:
        from benchmarks.speed.official import COLUMNS as OFFICIAL_COLUMNS

        rows = run_official(args)
        print(markdown(rows, OFFICIAL_COLUMNS))
        write_csv(rows, args.out, OFFICIAL_COLUMNS, args.overwrite)
        return 0
    rows = run_grid(args)
    print(markdown(rows, [c for c in COLUMNS if c not in (T.COL_THREADS, T.COL_DEVICE)]))
    write_csv(rows, args.out, COLUMNS, args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
