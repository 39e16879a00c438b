"""``python -m sr.train --config configs/train/<name>.yaml [--resume] [--set key=value ...]``

Multi-GPU: ``torchrun --nproc_per_node N -m sr.train --config ...`` (DDP is used when WORLD_SIZE > 1).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import yaml

from sr.errors import UserError, cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sr.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="a YAML path or a name in configs/train/")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt/last.pt if present")
    p.add_argument("--out-dir", help="override out_dir")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--weights-dir", help="weights directory (default: $IRSR_WEIGHTS_DIR or ~/.cache/irsr/weights)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.iterations=100 (YAML-parsed)")
    args = p.parse_args(argv)
    from sr.train.config import load_config
    from sr.train.trainer import Trainer

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    if args.out_dir:
        overrides["out_dir"] = args.out_dir
    if args.weights_dir:
        overrides["weights_dir"] = args.weights_dir
    cfg = load_config(args.config, overrides)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, resume=args.resume, device=args.device)
    val = trainer.fit()
    if trainer.is_main:
        print(json.dumps({"name": cfg.name, "step": trainer.step, "wall_s": round(time.perf_counter() - t0, 1),
                          "flags": list(trainer.flags), "val": val, "out_dir": str(cfg.out_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
