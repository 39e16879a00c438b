"""``python -m downstream.degradations``: list the degradations, or degrade frames.

    python -m downstream.degradations list
    python -m downstream.degradations apply --degradation sensor@2 --scale 4 --seed 0 IN.png OUT.png

``apply`` reads an 8- or 16-bit frame (16-bit values as raw counts, /65535) and writes the LR frame as PNG of the
degradation's output depth: 8-bit after agc / jpeg, else the input's (a 16-bit frame stays 16-bit). The sample id
of the random draws is the input's file name, so the same file and seed give the same LR as in a benchmark run of
a folder data set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from downstream.degradations.pipeline import DEGRADATIONS, degrade, list_degradations, output_bits, resolve
from downstream.imageio import open_image, read_image
from sr import cli
from sr.cli import cli_entry
from sr.errors import UserError
from sr.vocab import DEGRADATION_DEFAULT


def _list() -> None:
    for name in list_degradations():
        data = DEGRADATIONS.get(name).metadata
        severities = "severities 1-5" if data.get("severities") else "no severities"
        description = " ".join(str(data.get("description", "")).split())
        print(f"{name:10s} {data.get('stage', ''):10s} {severities:15s} {description}")


def _apply(args) -> None:
    spec = resolve(args.degradation)
    src, dst = Path(args.input), Path(args.output)
    if dst.resolve() == src.resolve():
        raise UserError(f"{dst}: the output would replace the input")
    with open_image(src) as img:
        bits = 16 if img.mode.startswith("I") else 8
    hr = torch.from_numpy(np.ascontiguousarray(read_image(src, high_bit_rule="full"))).permute(2, 0, 1)
    hr = hr[:, : hr.shape[1] - hr.shape[1] % args.scale, : hr.shape[2] - hr.shape[2] % args.scale]
    if spec.name == DEGRADATION_DEFAULT and bits == 16:
        raise UserError(f"{src}: bicubic is the paper's 8-bit protocol; give an 8-bit frame or another degradation")
    lr = degrade(hr, spec, scale=args.scale, seed=args.seed, sample_id=src.name, bits=bits)
    out_bits = output_bits(spec, bits)
    arr = np.round(lr.permute(1, 2, 0).numpy() * (2**out_bits - 1)).astype(np.uint16 if out_bits == 16 else np.uint8)
    if arr.shape[2] == 3 and out_bits == 8:
        image = Image.fromarray(arr, mode="RGB")
    else:
        image = Image.fromarray(arr[:, :, 0])  # 16-bit PNG is single-channel ("I;16"); RGB frames keep channel 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.save(dst, format="PNG")
    print(f"{dst}: {spec.label} x{args.scale}, {lr.shape[2]}x{lr.shape[1]}, {out_bits}-bit")


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m downstream.degradations", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the degradations, their stage and whether they have severities")
    a = sub.add_parser("apply", help="degrade one frame")
    a.add_argument("--degradation", required=True, help="NAME or NAME@SEVERITY, e.g. noise@3")
    a.add_argument("--scale", type=int, choices=(2, 4, 8), default=4)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("input", type=cli.existing_file)
    a.add_argument("output")
    args = p.parse_args(argv)
    if args.command == "list":
        _list()
    else:
        _apply(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
