"""``python -m benchmarks.real_stats``: noise, stripe, histogram, edge, shading, defect and blockiness statistics of
real LWIR frames, and where the severities of ``configs/degradations/`` sit against them (the tables of
docs/degradations.md).

Every statistic is measured the same way on the real frames (as their cameras delivered them, 8-bit) and on the
LR frames this project makes from clean synthetic HR frames (``synthir_demo``) under each degradation:

* ``noise``: temporal-noise estimate from the flattest patches (Immerkaer's Laplacian estimator, J. Immerkaer, "Fast
  noise variance estimation", CVIU 64(2), 1996, on 16x16 blocks; the 10th percentile of the blocks: scene detail
  inflates the others), in 8-bit DN;
* ``column`` / ``row``: fixed-pattern stripe amplitude: the standard deviation of the per-column (per-row) offset,
  from the median over rows (columns) of the horizontal (vertical) first difference, / sqrt(2); the median
  ignores scene edges, which are not aligned over the whole frame; in DN;
* ``span``: 0.5-99.5 percentile span of the histogram in DN, and ``clip``: the fraction of pixels at 0 or 255;
* ``edge``: blur as the Gaussian sigma (LR pixels) of the sharpest edges: at near-vertical (near-horizontal) edge
  pixels (a local maximum of the central-difference slope, a monotone step of at least 20 DN over +-5 pixels) the
  sigma of a Gaussian-blurred step with that slope / step ratio (``slope / step = erf(1 / (sigma sqrt 2)) / 2``,
  a sampled ideal step reads 0); the frame's value is the 10th percentile over its edge pixels (the sharpest edges
  carry the camera's own PSF; scene edges are softer: an upper bound), NaN with fewer than 20 edge pixels;
* ``shading``: low-frequency radial fall-off: a least-squares fit of ``c + a x + b y + k r^2`` (r = 1 at the
  corners) to the medians of a 16 x 16 grid of blocks; the fall-off is ``-k / c`` (positive: darker corners, as
  vignetting), a scene's own layout counts too (an upper bound);
* ``defects``: the fraction of isolated outlier pixels (dead / hot): more than 40 DN from the median of the 3 x 3
  neighbours and beyond every one of them; small hot objects count too (an upper bound);
* ``blockiness``: JPEG 8 x 8 blocking: the mean absolute first difference across block boundaries over the mean
  within blocks (both directions); 1 = no blocking grid.

``noise``, ``stripe``, ``shading`` and ``nuc`` severities are measured on a flat field (what they add), ``blur`` on a
slanted step edge, ``agc``, ``jpeg`` and ``sensor`` on synthir_demo scenes (they act on the histogram and content).

A single frame has no time axis, so ``noise`` also counts fine spatial texture and fixed-pattern noise: an upper
bound of the temporal noise. The severity 5 of each degradation must not exceed what real frames show (exit code 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import convolve, maximum_filter, median_filter, minimum_filter
from scipy.special import erfinv

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
_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=bool)  # the 8 neighbours of a pixel


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


def edge_sigma(
    frame: np.ndarray, *, half: int = 5, min_step: float = 20.0, min_points: int = 20, percentile: float = 10.0
) -> float:
    """Gaussian blur sigma (pixels) of the sharpest edges of a gray frame in DN: at each near-vertical edge pixel
    (and, on the transposed frame, near-horizontal) that is a local maximum of the central-difference slope along x
    and whose +-``half`` profile is one monotone step (total variation at most 1.2 x the step) of at least
    ``min_step`` DN, the sigma of a point-sampled Gaussian-blurred step centred on that pixel with that slope:
    slope / step = erf(1 / (sigma sqrt 2)) / 2 (an ideal step reads 0); the ``percentile`` over those pixels (edges
    off a pixel centre read wider); profiles whose centre slope holds less than 30 % of the step (sigma > 2.6, or an
    outlier at the window's end) are not edges; NaN when fewer than ``min_points``."""
    sigmas = []
    for f in (frame, frame.T):
        h, w = f.shape
        if w <= 2 * half + 2 or h < 3:
            continue
        gx = np.zeros_like(f)
        gx[:, 1:-1] = (f[:, 2:] - f[:, :-2]) / 2
        gy = np.zeros_like(f)
        gy[1:-1, :] = (f[2:, :] - f[:-2, :]) / 2
        ax, centre = np.abs(gx), slice(half, w - half)
        peak = ax[:, centre]
        keep = (peak >= ax[:, half - 1 : w - half - 1]) & (peak > ax[:, half + 1 : w - half + 1])
        keep &= peak > 2 * np.abs(gy[:, centre])
        ys, xs = np.nonzero(keep)
        xs = xs + half
        profiles = f[ys[:, None], xs[:, None] + np.arange(-half, half + 1)]
        step = np.abs(profiles[:, -1] - profiles[:, 0])
        monotone = np.abs(np.diff(profiles, axis=1)).sum(axis=1) <= 1.2 * step
        good = (step >= min_step) & monotone
        ratio = np.minimum(2 * ax[ys, xs] / np.maximum(step, 1e-12), 1 - 1e-12)
        good &= ratio >= 0.3  # the slope concentrated at the centre: sigma <= 2.6 (wider is not one edge here)
        sigmas.append(1 / (np.sqrt(2) * erfinv(ratio[good])))
    values = np.concatenate(sigmas) if sigmas else np.empty(0)
    return float(np.percentile(values, percentile)) if values.size >= min_points else float("nan")


def shading_falloff(frame: np.ndarray, grid: int = 16) -> float:
    """Relative radial fall-off from the centre to the corners: ``-k / c`` of the least-squares fit ``c + a x + b y
    + k r^2`` (r = 1 at the corners) to the medians of a ``grid`` x ``grid`` grid of blocks (positive: darker
    corners); NaN for a frame too small or black at the centre."""
    h, w = frame.shape
    bh, bw = h // grid, w // grid
    if bh < 1 or bw < 1:
        return float("nan")
    blocks = frame[: bh * grid, : bw * grid].reshape(grid, bh, grid, bw).transpose(0, 2, 1, 3).reshape(grid, grid, -1)
    medians = np.median(blocks, axis=2).ravel()
    y = (np.arange(grid) + 0.5) * bh - bh * grid / 2  # block centres, pixels from the frame centre
    x = (np.arange(grid) + 0.5) * bw - bw * grid / 2
    yy, xx = np.meshgrid(y, x, indexing="ij")
    r2 = (xx**2 + yy**2) / ((bw * grid / 2) ** 2 + (bh * grid / 2) ** 2)
    basis = np.stack([np.ones(r2.size), xx.ravel() / (bw * grid), yy.ravel() / (bh * grid), r2.ravel()], axis=1)
    (c, _, _, k), *_ = np.linalg.lstsq(basis, medians, rcond=None)
    return float(-k / c) if c > 0 else float("nan")


def defect_fraction(frame: np.ndarray, threshold: float = 40.0) -> float:
    """Fraction of isolated outlier pixels (dead or hot) of a gray frame in DN: more than ``threshold`` DN above
    (below) the median of their 8 neighbours and above (below) every one of them."""
    med = median_filter(frame, footprint=_RING, mode="reflect")
    hot = (frame - med > threshold) & (frame > maximum_filter(frame, footprint=_RING, mode="reflect"))
    dead = (med - frame > threshold) & (frame < minimum_filter(frame, footprint=_RING, mode="reflect"))
    return float((hot | dead).mean())


def blockiness(frame: np.ndarray, block: int = 8) -> float:
    """JPEG blocking: mean absolute first difference across the ``block`` grid's boundaries over the mean within
    blocks, horizontal and vertical together (1: no grid; NaN for a frame without differences)."""
    across = within = 0.0
    for axis in (0, 1):
        d = np.abs(np.diff(frame, axis=axis))
        boundary = (np.arange(d.shape[axis]) % block) == block - 1
        taken = np.take(d, np.nonzero(boundary)[0], axis=axis)
        rest = np.take(d, np.nonzero(~boundary)[0], axis=axis)
        if taken.size == 0 or rest.size == 0:
            return float("nan")
        across, within = across + taken.mean(), within + rest.mean()
    return float(across / within) if within > 0 else float("nan")


def frame_stats(frame: np.ndarray) -> dict[str, float]:
    """Statistics of a gray frame in DN (0-255)."""
    lo, hi = np.percentile(frame, [0.5, 99.5])
    return {
        "noise": noise_sigma(frame),
        "column": stripe_sigma(frame, 1),
        "row": stripe_sigma(frame, 0),
        "span": float(hi - lo),
        "clip": float(((frame <= 0) | (frame >= 255)).mean()),
        "edge": edge_sigma(frame),
        "shading": shading_falloff(frame),
        "defects": defect_fraction(frame),
        "blockiness": blockiness(frame),
    }


def real_frames(root: Path, limit: int | None = None):
    """(data set, file, gray frame in DN) of every real sample under ``root`` (../shared/data)."""
    from downstream.imageio import read_image

    for name, folder, pattern in REAL_SETS:
        files = sorted((root / folder).glob(pattern))[:limit]
        for f in files:
            yield name, f, read_image(f, channels=1)[:, :, 0].astype(np.float64) * 255


def flat_field(size: tuple[int, int] = (512, 640)) -> torch.Tensor:
    """A flat mid-grey 8-bit HR field: what a severity *adds* (the estimators read 0 on it but for 8-bit rounding)."""
    return torch.full((1, *size), 128 / 255)


def slanted_edge(size: tuple[int, int] = (512, 640), angle: float = 5.0) -> torch.Tensor:
    """An ideal 8-bit HR step (64 -> 192 DN) slanted by ``angle`` degrees from vertical (ISO 12233's slanted edge:
    every sub-pixel phase of the edge is sampled)."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    right = (xx - size[1] / 2) > (yy - size[0] / 2) * np.tan(np.radians(angle))
    return torch.from_numpy(np.where(right, 192.0, 64.0)[None] / 255).float()


def made_frames(hr: torch.Tensor, labels: list[str], count: int):
    """(label, LR frame in DN) of the HR frame ``hr`` under each label, ``count`` sample ids each."""
    from downstream.degradations import degrade

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


def _three(values, fmt: str = ".2f", factor: float = 1.0) -> str:
    values = np.asarray(values, dtype=float) * factor
    if not np.isfinite(values).any():
        return "n/a"
    return " / ".join(f"{v:{fmt}}" for v in np.nanpercentile(values, [50, 90, 100]))


def _row(name: str, stats: list[dict[str, float]]) -> str:
    spans = [x["span"] for x in stats]
    return (
        f"| {name} | {len(stats)} | {_three([x['noise'] for x in stats])} | {_three([x['column'] for x in stats])} | "
        f"{_three([x['row'] for x in stats])} | {np.median(spans):.0f} / {np.min(spans):.0f} | "
        f"{_three([x['clip'] for x in stats], factor=100)} |"
    )


def _row2(name: str, stats: list[dict[str, float]]) -> str:
    return (
        f"| {name} | {len(stats)} | {_three([x['edge'] for x in stats])} | "
        f"{_three([x['shading'] for x in stats], '.1f', 100)} | {_three([x['defects'] for x in stats], '.0f', 1e6)} | "
        f"{_three([x['blockiness'] for x in stats], '.3f')} |"
    )


#: (statistic, synthetic source, the severity 5 that must not lie beyond every real frame)
CHECKS = (
    ("noise", "flat", "noise@5"),
    ("column", "flat", "stripe@5"),
    ("row", "flat", "stripe@5"),
    ("clip", "scenes", "agc@5"),
    ("edge", "edge", "blur@5"),
    ("shading", "flat", "shading@5"),
    ("defects", "flat", "nuc@5"),
    ("blockiness", "scenes", "jpeg@5"),
)


def tables(root: Path, count: int = 6, limit: int | None = None) -> tuple[str, list[str]]:
    """The two markdown tables (noise, stripes, histogram; edges, shading, defects, blocking) and the problems
    found (a severity beyond every real frame)."""
    real = _collect((name, frame) for name, _, frame in real_frames(root, limit))
    every = [s for v in real.values() for s in v]
    made = {
        "flat": _collect(
            made_frames(
                flat_field(),
                ["bicubic"] + [f"{n}@{s}" for n in ("noise", "stripe", "shading", "nuc") for s in range(1, 6)],
                2,
            )
        ),
        "edge": _collect(made_frames(slanted_edge(), ["bicubic", "area"] + [f"blur@{s}" for s in range(1, 6)], 2)),
        "scenes": _collect(
            synthetic_frames(["bicubic"] + [f"{n}@{s}" for n in ("agc", "jpeg", "sensor") for s in range(1, 6)], count)
        ),
    }
    names = {"flat": "flat field", "edge": "slanted edge", "scenes": "synthir_demo"}
    first = {"flat": ("bicubic", "noise", "stripe", "nuc"), "edge": (), "scenes": ("bicubic", "agc", "sensor")}
    second = {
        "flat": ("bicubic", "shading", "nuc"),
        "edge": ("bicubic", "area", "blur"),
        "scenes": ("bicubic", "jpeg", "sensor"),
    }
    layouts = (
        (
            "| frames | n | noise DN (median / p90 / max) | column DN | row DN | span DN (median / min) | clip % |",
            "|---|---|---|---|---|---|---|",
            _row,
            first,
        ),
        (
            "| frames | n | edge sigma, LR px (median / p90 / max) | shading fall-off % | defects ppm "
            "| JPEG blockiness |",
            "|---|---|---|---|---|---|",
            _row2,
            second,
        ),
    )
    lines: list[str] = []
    for header, rule, row, shown in layouts:  # the real frames, all of them, then the made ones each table shows
        lines += ([""] if lines else []) + [header, rule]
        lines += [row(name, stats) for name, stats in real.items()]
        lines.append(row("**all real**", every))
        lines += [
            row(f"{names[src]}, `{label}`", stats)
            for src, rows in made.items()
            for label, stats in rows.items()
            if label.partition("@")[0] in shown[src]
        ]
    problems = []
    for key, source, label in CHECKS:
        top = float(np.nanmax([s[key] for s in every]))
        value = float(np.median([s[key] for s in made[source][label]]))
        if value > top:
            problems.append(f"{label}: {key} {value:.4g} is beyond every real frame (max {top:.4g})")
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
