"""Qualitative figures (the paper's Figures 3, 4, 5): the same crop of the same frame for every method.

SR images come from the run the results.csv belongs to: ``<run>/sr_outputs/<data set>__<method>.csv``
(``dataset,method,id,path``, path relative to the run; written by the runner). Without them the figures are
skipped with the reason. Figure 3 is an image grid; Figures 4 and 5 need the detection / segmentation figure
helpers and models and are left out here (reason given) until a run records what they need.
"""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from reports.paper_tables import paper_label  # noqa: E402

CROP = 96         # crop side in HR pixels
MAX_METHODS = 16  # per grid


def sr_index(run_dir: str | Path) -> pd.DataFrame:
    """dataset, method, id, path (absolute) for every SR frame the run recorded."""
    run_dir = Path(run_dir)
    rows = []
    for f in sorted((run_dir / "sr_outputs").glob("*.csv")):
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh):
                p = Path(r["path"])
                r["path"] = str(p if p.is_absolute() else run_dir / p)
                rows.append(r)
    return pd.DataFrame(rows, columns=["dataset", "method", "id", "path"])


def _crop_box(shape: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    h, w = shape
    size = min(size, h, w)
    y0, x0 = (h - size) // 2, (w - size) // 2
    return x0, y0, x0 + size, y0 + size


def image_grid(images: list[tuple[str, Path]], crop_size: int, title: str, stem: Path) -> list[Path]:
    """One panel per (label, image): the same centre crop of each, nearest-neighbour, PNG + SVG."""
    loaded = []
    for label, p in images:
        with Image.open(p) as im:
            loaded.append((label, np.asarray(im.convert("RGB"))))
    ref_shape = loaded[0][1].shape[:2]
    x0, y0, x1, y1 = _crop_box(ref_shape, crop_size)
    n = len(loaded)
    cols = min(n, 6)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (label, arr) in zip(axes.ravel(), loaded):
        if arr.shape[:2] != ref_shape:  # another size: resize to the reference frame first
            arr = np.asarray(Image.fromarray(arr).resize(ref_shape[::-1], Image.NEAREST))
        ax.imshow(arr[y0:y1, x0:x1], interpolation="nearest")
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def qualitative_figures(run_dir: str | Path, df: pd.DataFrame, out_dir: str | Path,
                        crop_size: int = CROP) -> tuple[list[tuple[str, Path]], list[str]]:
    """Figure 3 grids per data set; returns ([(caption, png)], [reasons for what was skipped])."""
    out_dir = Path(out_dir)
    index = sr_index(run_dir)
    made: list[tuple[str, Path]] = []
    skipped: list[str] = []
    if index.empty:
        return made, [f"Figures 3/4/5: no SR image index in {Path(run_dir) / 'sr_outputs'} (the run wrote none)"]
    random_methods = set(df.loc[df["flags"].str.contains("random_weights", na=False), "method"])
    index = index[index.path.map(lambda p: Path(p).is_file())]
    for ds, part in index.groupby("dataset", sort=True):
        methods = list(dict.fromkeys(part.method))
        common = set.intersection(*(set(part[part.method == m].id) for m in methods))
        if not common:
            skipped.append(f"Figure 3 ({ds}): no frame that every method has")
            continue
        frame = sorted(common)[0]
        order = sorted(methods, key=lambda m: (m != "lr", m == "hr", m))[:MAX_METHODS]
        images = []
        for m in order:
            label = paper_label(m) + (" †" if m in random_methods else "")
            images.append((label, Path(part[(part.method == m) & (part.id == frame)].path.iloc[0])))
        stem = out_dir / f"fig3_{ds}_{frame}".replace("/", "_")
        try:
            paths = image_grid(images, crop_size, f"Figure 3: {ds} / {frame}, centre crop {crop_size}px", stem)
        except (OSError, ValueError) as exc:
            skipped.append(f"Figure 3 ({ds}): {exc}")
            continue
        made.append((f"Figure 3 ({ds}, frame {frame}): the same crop for every method", paths[0]))
    skipped.append("Figures 4/5 (detections / segmentation overlays): the run does not record the detector and "
                   "segmenter to redraw them from results.csv; see downstream/detection/figure.py")
    return made, skipped
