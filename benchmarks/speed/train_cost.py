"""Cost of one guided training step relative to an unguided one, measured in the same process.

    python -m benchmarks.speed.train_cost [--config difiisr_demo] [--warmup 1] [--repeat 10] [--rounds 3] \\
        [--terms fft] [--device cpu] [--out train_cost.csv]

Builds the trainer of ``--config`` once per variant (none / sum / inject w.r.t. x_t, first and second
order / inject w.r.t. the x0 prediction), runs ``--warmup`` untimed steps each, then times ``--repeat``
optimiser steps per variant in each of ``--rounds`` interleaved rounds (so machine-load drift hits every
variant alike; ``benchmarks.speed.timing.time_calls``, CUDA-synchronised). Prints a table and writes ``--out``:
median and p90 step time (ms), the ratio of the median to ``none``'s, and on CUDA the peak memory above
what was in use before the round (GiB; ``nan`` on CPU, where in one process a later round reuses the
first one's buffers). Column names and units are ``benchmarks.speed.timing``'s.
"""

from __future__ import annotations

import tempfile

import torch

from benchmarks.speed import timing as T
from sr import cli
from sr.cli import cli_entry
from sr.train.config import load_config
from sr.train.trainer import Trainer
from sr.vocab import OPT_RANDOM_WEIGHTS

COLUMNS = [
    "variant",
    "config",
    "terms",
    T.COL_DEVICE,
    T.COL_THREADS,
    T.COL_REPEATS,
    T.COL_LATENCY_MS,
    T.COL_P90_MS,
    "ratio_to_unguided",
    T.COL_PEAK_GIB,
    T.COL_LOAD,
    T.COL_NOTE,
]


def variants(terms: list[str]) -> dict[str, dict]:
    inj = [{"kind": k, "mode": "inject"} for k in terms]
    return {
        "none": {"terms": []},
        "sum": {"terms": [{"kind": k, "mode": "sum"} for k in terms]},
        "inject": {"terms": inj, "rho": 0.01},
        "inject_second_order": {"terms": inj, "rho": 0.01, "second_order": True},
        "inject_wrt_x0": {"terms": inj, "rho": 0.01, "wrt": "x0"},
    }


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.speed.train_cost", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="difiisr_demo")
    T.add_options(p, warmup=1, repeat=10)
    p.add_argument("--rounds", type=cli.positive_int, default=3, help="interleaved rounds of --repeat steps each")
    p.add_argument(
        "--terms", type=cli.names, default="fft", help="guidance kinds (fft, ssim, mse, vgg, sam, lpips, edge)"
    )
    p.add_argument(OPT_RANDOM_WEIGHTS, action="store_true", help="untrained feature networks (said in the note column)")
    p.add_device()
    return p


@cli_entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    T.claim_out(args)  # a user's --out file is refused before anything is measured
    load = T.load_1min()
    with tempfile.TemporaryDirectory(prefix="train_cost_") as tmp:
        trainers = {}
        for name, guidance in variants(args.terms).items():
            cfg = load_config(
                args.config,
                {
                    "objective.guidance": guidance,
                    "objective.guidance_start": 0,
                    "train.progress": False,
                    "train.tensorboard": False,
                    "out_dir": f"{tmp}/{name}",
                    "data.max_images": 8,
                    "data.val_images": 0,
                    "random_weights": args.random_weights,
                },
            )
            trainers[name] = Trainer(cfg, device=args.device)
            for _ in range(args.warmup):
                trainers[name].train_step()
        times: dict[str, list[float]] = {k: [] for k in trainers}
        peaks: dict[str, list[float]] = {k: [] for k in trainers}
        for _ in range(args.rounds):
            for name, tr in trainers.items():
                t = T.time_calls(tr.train_step, tr.device, warmup=0, repeat=args.repeat)
                times[name] += t.times_ms
                peaks[name].append(t.peak_gib)
    runs = {k: T.Timed(times_ms=v, peak_gib=max(peaks[k])) for k, v in times.items()}
    unguided = runs["none"].median_ms
    rows = [
        {
            "variant": name,
            "config": args.config,
            "terms": ",".join(args.terms),
            T.COL_DEVICE: str(trainers[name].device),
            T.COL_THREADS: torch.get_num_threads(),
            T.COL_REPEATS: len(t.times_ms),
            T.COL_LATENCY_MS: round(t.median_ms, 2),
            T.COL_P90_MS: round(t.p90_ms, 2),
            "ratio_to_unguided": round(t.median_ms / unguided, 3),
            T.COL_PEAK_GIB: round(t.peak_gib, 4),
            T.COL_LOAD: load,
            T.COL_NOTE: f"untrained feature networks ({OPT_RANDOM_WEIGHTS})" if args.random_weights else "",
        }
        for name, t in runs.items()
    ]
    print(T.markdown(rows, COLUMNS))
    T.write_csv(rows, args.out, COLUMNS, args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
