"""``python -m sr.train --config configs/train/<name>.yaml [--resume] [--set key=value ...]``

Multi-GPU: ``torchrun --nproc_per_node N -m sr.train --config ...`` (DDP is used when WORLD_SIZE > 1).
"""

from __future__ import annotations

import json
import sys
import time

from sr import cli
from sr.cli import cli_entry
from sr.errors import UserError
from sr.ownership import add_overwrite_option
from sr.safeparse import load_yaml


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m sr.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="a YAML path or a name in configs/train/")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt/last.pt if present")
    p.add_argument("--out", type=cli.dir_path, help="run folder (overrides the config's out_dir)")
    add_overwrite_option(p)
    p.add_device()
    p.add_weights_dir()
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.iterations=100 (YAML-parsed)",
    )
    return p


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sr.train.config import load_config
    from sr.train.run_method import check_sampling
    from sr.train.trainer import Trainer

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = load_yaml(value, f"--set {item!r}")
    if args.out:
        overrides["out_dir"] = str(args.out)
    if args.weights_dir:
        overrides["weights_dir"] = str(args.weights_dir)
    cfg = load_config(args.config, overrides)
    check_sampling(cfg)  # before the run folder is made: the run must be sampled as its objective trains it
    cli.check_writable_dir(cfg.out_dir)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, resume=args.resume, device=args.device, overwrite=args.overwrite)
    val = trainer.fit()
    if trainer.is_main:
        print(
            json.dumps(
                {
                    "name": cfg.name,
                    "step": trainer.step,
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "flags": list(trainer.flags),
                    "val": val,
                    "out_dir": str(cfg.out_dir),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
