"""``python -m benchmarks.real_stats``: noise, stripe and histogram statistics of real LWIR frames, and where the
severities of ``configs/degradations/`` sit against them (the table of docs/degradations.md).

Every statistic is measured the same way on the real frames (as their cameras delivered them, 8-bit) and on the
LR frames this project makes from clean synthetic HR frames (``synthir_demo``) under each degradation:

* ``noise``: temporal-noise estimate from the flattest patches (Immerkaer's Laplacian estimator, J. Immerkaer, "Fast
  noise variance estimation", CVIU 64(2), 1996, on 16x16 blocks; the 10th percentile of the blocks: scene detail
  inflates the others), in 8-bit DN;
* ``column`` / ``row``: fixed-pattern stripe amplitude: the standard deviation of the per-column (per-row) offset,
  from the median over rows (columns) of the horizontal (vertical) first difference, / sqrt(2); the median
  ignores scene edges, which are not aligned over the whole frame; in DN;
* ``span``: 0.5-99.5 percentile span of the histogram in DN, and ``clip``: the fraction of pixels at 0 or 255.

``noise`` and ``stripe`` severities are measured on a flat field (what they add), ``agc`` and ``sensor`` on
synthir_demo scenes (they act on the histogram).

A single frame has no time axis, so ``noise`` also counts fine spatial texture and fixed-pattern noise: an upper
bound of the temporal noise. The severity 5 of ``noise`` and ``stripe`` must not exceed what real frames show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import convolve

from sr import cli
from sr.cli import cli_entry

#: (name, folder under the data root, glob): the real LWIR samples of ../shared/data
REAL_SETS = (
    ("TNO", "tno/ir", "*.png"),
    ("RoadScene", "roadscene/ir", "*.jpg"),
    ("M3FD", "m3fd/ir", "*.png"),
    ("HIT-UAV", "hit_uav/images", "*.jpg"),
)
_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def noise_sigma(frame: np.ndarray, block: int = 16, percentile: float = 10.0) -> float:
    """Immerkaer's noise std (DN) on the flattest blocks of a gray frame in DN."""
    residual = np.abs(convolve(frame, _LAPLACE, mode="reflect"))[1:-1, 1:-1]
    h, w = (residual.shape[0] // block) * block, (residual.shape[1] // block) * block
    blocks = residual[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    return float(np.sqrt(np.pi / 2) / 6 * np.percentile(blocks, percentile))


def stripe_sigma(frame: np.ndarray, axis: int) -> float:
    """Std (DN) of the per-column (axis=1) or per-row (axis=0) offset."""
    diff = np.diff(frame, axis=axis)
    profile = np.median(diff, axis=1 - axis)
    return float(profile.std() / np.sqrt(2))


def frame_stats(frame: np.ndarray) -> dict[str, float]:
    """Statistics of a gray frame in DN (0-255)."""
    lo, hi = np.percentile(frame, [0.5, 99.5])
    return {
        "noise": noise_sigma(frame),
        "column": stripe_sigma(frame, 1),
        "row": stripe_sigma(frame, 0),
        "span": float(hi - lo),
        "clip": float(((frame <= 0) | (frame >= 255)).mean()),
    }


def real_frames(root: Path, limit: int | None = None):
    """(data set, file, gray frame in DN) of every real sample under ``root`` (../shared/data)."""
    from downstream.imageio import read_image

    for name, folder, pattern in REAL_SETS:
        files = sorted((root / folder).glob(pattern))[:limit]
        for f in files:
            yield name, f, read_image(f, channels=1)[:, :, 0].astype(np.float64) * 255


def flat_frames(labels: list[str], count: int, size: tuple[int, int] = (512, 640)):
    """(label, LR frame in DN) of a flat mid-grey 8-bit HR field under each label: what a severity *adds* (the
    estimators read 0 on the clean field but for 8-bit rounding)."""
    from downstream.degradations import degrade

    hr = torch.full((1, *size), 128 / 255)
    for label in labels:
        for i in range(count):
            yield label, degrade(hr, label, scale=4, seed=0, sample_id=f"flat{i}")[0].to(torch.float64).numpy() * 255


def synthetic_frames(labels: list[str], count: int):
    """(label, LR frame in DN) of ``count`` synthir_demo frames under each degradation label."""
    from downstream.datasets import load_dataset
    from downstream.degradations import degrade

    dataset = load_dataset("synthir_demo")
    hrs = [(i, dataset.load(i, labels=False).hr) for i in dataset.ids()[:count]]
    for label in labels:
        for sample_id, hr in hrs:
            lr = degrade(hr, label, scale=4, seed=0, sample_id=sample_id)
            yield label, lr.mean(0).to(torch.float64).numpy() * 255


def _collect(frames) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for label, frame in frames:
        out.setdefault(label, []).append(frame_stats(frame))
    return out


def _three(values) -> str:
    return " / ".join(f"{v:.2f}" for v in np.percentile(values, [50, 90, 100]))


def _row(name: str, stats: list[dict[str, float]]) -> str:
    spans = [x["span"] for x in stats]
    return (
        f"| {name} | {len(stats)} | {_three([x['noise'] for x in stats])} | {_three([x['column'] for x in stats])} | "
        f"{_three([x['row'] for x in stats])} | {np.median(spans):.0f} / {np.min(spans):.0f} | "
        f"{_three([100 * x['clip'] for x in stats])} |"
    )


def tables(root: Path, count: int = 6, limit: int | None = None) -> tuple[str, list[str]]:
    """The markdown table and the problems found (a severity beyond every real frame)."""
    real = _collect((name, frame) for name, _, frame in real_frames(root, limit))
    every = [s for v in real.values() for s in v]
    flat = _collect(flat_frames(["bicubic"] + [f"{n}@{s}" for n in ("noise", "stripe") for s in range(1, 6)], 2))
    scenes = _collect(
        synthetic_frames(["bicubic"] + [f"{n}@{s}" for n in ("agc", "sensor") for s in range(1, 6)], count)
    )
    head = "| frames | n | noise DN (median / p90 / max) | column DN | row DN | span DN (median / min) | clip % |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    lines += [_row(name, stats) for name, stats in real.items()]
    lines.append(_row("**all real**", every))
    lines += [_row(f"flat field, `{label}`", stats) for label, stats in flat.items()]
    lines += [_row(f"synthir_demo, `{label}`", stats) for label, stats in scenes.items()]
    problems = []
    for key, source, label in (
        ("noise", flat, "noise@5"),
        ("column", flat, "stripe@5"),
        ("row", flat, "stripe@5"),
        ("clip", scenes, "agc@5"),
    ):
        top = max(s[key] for s in every)
        made = float(np.median([s[key] for s in source[label]]))
        if made > top:
            problems.append(f"{label}: {key} {made:.4g} is beyond every real frame (max {top:.4g})")
    return "\n".join(lines), problems


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m benchmarks.real_stats", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=cli.dir_path, required=True, help="the real samples (../shared/data)")
    p.add_argument("--count", type=cli.positive_int, default=6, help="synthir_demo frames per degradation")
    p.add_argument("--limit", type=cli.positive_int, default=None, help="at most N real frames per data set")
    args = p.parse_args(argv)
    text, problems = tables(Path(args.data), args.count, args.limit)
    print(text)
    for problem in problems:
        print(f"BUG: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
