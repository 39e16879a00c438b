"""Cost of one guided training step relative to an unguided one, measured in the same process.

    python -m benchmarks.train_cost [--config difiisr_demo] [--steps 10] [--terms fft] [--device cpu]

Builds the trainer of ``--config`` once per variant (none / sum / inject w.r.t. x_t, first and second
order / inject w.r.t. the x0 prediction), warms each up, then times ``--steps`` optimiser steps per
variant in interleaved rounds (so machine-load drift hits every variant alike) and prints the median
step time and its ratio to ``none`` as JSON.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from sr import cli
from sr.cli import cli_entry
from sr.train.config import load_config
from sr.train.trainer import Trainer


def variants(terms: list[str]) -> dict[str, dict]:
    inj = [{"kind": k, "mode": "inject"} for k in terms]
    return {
        "none": {"terms": []},
        "sum": {"terms": [{"kind": k, "mode": "sum"} for k in terms]},
        "inject": {"terms": inj, "rho": 0.01},
        "inject_second_order": {"terms": inj, "rho": 0.01, "second_order": True},
        "inject_wrt_x0": {"terms": inj, "rho": 0.01, "wrt": "x0"},
    }


@cli_entry
def main(argv=None) -> int:
    p = cli.ArgumentParser(prog="python -m benchmarks.train_cost")
    p.add_argument("--config", default="difiisr_demo")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--terms", default="fft", help="comma-separated guidance kinds (fft, ssim, mse, vgg, sam, lpips, edge)"
    )
    p.add_argument("--random-weights", action="store_true", help="feature networks untrained (flagged)")
    p.add_device()
    args = p.parse_args(argv)
    trainers = {}
    for name, guidance in variants(args.terms.split(",")).items():
        cfg = load_config(
            args.config,
            {
                "objective.guidance": guidance,
                "objective.guidance_start": 0,
                "train.progress": False,
                "train.tensorboard": False,
                "out_dir": f"/tmp/train_cost_{name}",
                "data.max_images": 8,
                "data.val_images": 0,
                "random_weights": args.random_weights,
            },
        )
        trainers[name] = Trainer(cfg, device=args.device)
        trainers[name].train_step()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(args.rounds):
        for name, tr in trainers.items():
            for _ in range(args.steps):
                if tr.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                tr.train_step()
                if tr.device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "config": args.config,
        "terms": args.terms,
        "device": str(next(iter(trainers.values())).device),
        "threads": torch.get_num_threads(),
        "steps_per_variant": len(times["none"]),
        "median_step_s": {k: round(v, 4) for k, v in med.items()},
        "ratio_to_unguided": {k: round(v / med["none"], 3) for k, v in med.items()},
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
