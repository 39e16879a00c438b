"""Qualitative segmentation comparison (the paper's Figure 5): predicted masks over SR crops.

``overlay(image, ids)`` blends a class-colour map over an infrared frame; ``comparison_grid`` lays
out one panel per method (SR crop + the task's predicted mask), optionally with the ground truth,
and a legend of the classes present. ``python -m downstream.segmentation.figure`` does it from files::

    python -m downstream.segmentation.figure --task segmentation_demo --out fig5.png \
        --image HR=hr/x.png --image bicubic=bicubic/x.png --gt x_mask.png --crop 40,60,160,120
"""

from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from downstream.datasets.fmb import FMB_PALETTE
from downstream.sample import IGNORE_INDEX
from sr import cli
from sr.cli import cli_entry
from sr.ownership import add_overwrite_option, claim_file

#: the kind of file ``--out`` is (``sr.ownership.claim_file``)
FIGURE_KIND = "segmentation figure"


def palette_for(num_classes: int) -> np.ndarray:
    """FMB's colours for up to 15 classes, then deterministic extra colours."""
    if num_classes <= len(FMB_PALETTE):
        pal = FMB_PALETTE[:num_classes].copy()
        if num_classes == 2:
            pal[1] = (255, 40, 40)  # binary masks: red targets
        return pal
    rng = np.random.default_rng(0)
    extra = rng.integers(40, 256, size=(num_classes - len(FMB_PALETTE), 3)).astype(np.uint8)
    return np.concatenate([FMB_PALETTE, extra])


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3), float [0, 1] or uint8 -> (H, W, 3) uint8."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr[..., :3]


def overlay(
    image: np.ndarray,
    ids: np.ndarray,
    palette: np.ndarray | None = None,
    alpha: float = 0.5,
    skip: tuple[int, ...] = (0,),
) -> np.ndarray:
    """Blend class colours over ``image``; ids in ``skip`` and IGNORE_INDEX stay uncoloured."""
    rgb = to_rgb_uint8(image).astype(np.float32)
    ids = np.asarray(ids)
    if ids.shape != rgb.shape[:2]:
        raise ValueError(f"mask {ids.shape} and image {rgb.shape[:2]} differ in size")
    palette = palette_for(int(ids[ids != IGNORE_INDEX].max(initial=0)) + 1) if palette is None else palette
    colour = palette[np.clip(ids, 0, len(palette) - 1)].astype(np.float32)
    draw = (ids != IGNORE_INDEX) & ~np.isin(ids, list(skip))
    out = rgb.copy()
    out[draw] = (1 - alpha) * rgb[draw] + alpha * colour[draw]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def crop(arr: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """``box`` = (x, y, w, h) in pixels, clipped to the array."""
    if box is None:
        return arr
    x, y, w, h = box
    return arr[max(y, 0) : y + h, max(x, 0) : x + w]


def comparison_grid(
    panels: list[tuple[str, np.ndarray, np.ndarray]],
    class_names: tuple[str, ...],
    box: tuple[int, int, int, int] | None = None,
    zoom: int = 2,
    alpha: float = 0.5,
    skip: tuple[int, ...] = (0,),
    columns: int | None = None,
) -> Image.Image:
    """One panel per (title, image, ids): the crop, zoomed by ``zoom`` (nearest), with its overlay.

    Returns an RGB image with titles above the panels and a legend of the classes that appear.
    """
    if not panels:
        raise ValueError("no panels to draw")
    palette = palette_for(len(class_names))
    tiles, present = [], set()
    for title, image, ids in panels:
        ids_c = crop(np.asarray(ids), box)
        tile = overlay(crop(to_rgb_uint8(image), box), ids_c, palette, alpha, skip)
        present |= {int(i) for i in np.unique(ids_c) if i != IGNORE_INDEX and i not in skip}
        tile_img = Image.fromarray(tile).resize((tile.shape[1] * zoom, tile.shape[0] * zoom), Image.NEAREST)
        tiles.append((title, tile_img))
    font = ImageFont.load_default()
    pad, title_h = 6, 14
    tw, th = max(t.width for _, t in tiles), max(t.height for _, t in tiles)
    cols = columns or len(tiles)
    rows = (len(tiles) + cols - 1) // cols
    legend = [(class_names[i], tuple(int(c) for c in palette[i])) for i in sorted(present) if i < len(class_names)]
    legend_h = 16 * ((len(legend) + 3) // 4) + pad if legend else 0
    canvas = Image.new("RGB", (cols * (tw + pad) + pad, rows * (th + title_h + pad) + pad + legend_h), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (title, tile) in enumerate(tiles):
        x = pad + (k % cols) * (tw + pad)
        y = pad + (k // cols) * (th + title_h + pad)
        draw.text((x, y), title, fill="black", font=font)
        canvas.paste(tile, (x, y + title_h))
    y0 = pad + rows * (th + title_h + pad)
    col_w = max(1, (canvas.width - pad) // 4)
    for k, (name, colour) in enumerate(legend):
        x, y = pad + (k % 4) * col_w, y0 + 16 * (k // 4)
        draw.rectangle((x, y + 2, x + 10, y + 12), fill=colour, outline="black")
        draw.text((x + 14, y + 1), name, fill="black", font=font)
    return canvas


def figure_from_files(
    task,
    images: dict[str, str | os.PathLike],
    class_names: tuple[str, ...],
    gt: np.ndarray | None = None,
    box: tuple[int, int, int, int] | None = None,
    out: str | os.PathLike | None = None,
    **kwargs,
) -> Image.Image:
    """Predict each image with ``task`` (a SegmentationTask) and draw the comparison grid."""
    from downstream.imageio import read_image

    blocked = tuple(class_names.index(c) for c in task.ignore_classes)
    panels = []
    for title, path in images.items():
        image = read_image(path, channels="auto")
        ids = task.predict(image, len(class_names), blocked=blocked)
        panels.append((title, image, ids))
    if gt is not None:
        panels.append(("ground truth", panels[0][1], gt))
    fig = comparison_grid(panels, class_names, box, skip=blocked or (), **kwargs)
    if out is not None:
        from sr.atomic import atomic_path

        with atomic_path(out) as tmp:
            fig.save(tmp, format="PNG")
    return fig


@cli_entry
def main(argv: list[str] | None = None) -> int:
    from downstream.labels import read_mask
    from downstream.tasks import load_task

    parser = cli.ArgumentParser(prog="python -m downstream.segmentation.figure", description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="segmentation_demo", help="task config name (configs/tasks)")
    parser.add_argument(
        "--image",
        action="append",
        required=True,
        metavar="TITLE=PATH",
        help="an SR output to segment (repeat; the first also backs the ground-truth panel)",
    )
    parser.add_argument("--gt", help="ground-truth id mask (PNG) of the same frame")
    parser.add_argument("--classes", default="fmb", help="'fmb' or a comma-separated class list")
    parser.add_argument("--crop", help="x,y,w,h in pixels")
    parser.add_argument("--zoom", type=cli.positive_int, default=2)
    parser.add_device()
    parser.add_argument("--out", type=cli.out_file, required=True)
    add_overwrite_option(parser)
    args = parser.parse_args(argv)
    owned = claim_file(args.out, FIGURE_KIND, overwrite=args.overwrite)  # a user's file: refused before any work
    try:
        from downstream.datasets.fmb import FMB_CLASSES

        classes = FMB_CLASSES if args.classes == "fmb" else tuple(c.strip() for c in args.classes.split(","))
        images = dict(item.split("=", 1) for item in args.image)
        box = tuple(int(v) for v in args.crop.split(",")) if args.crop else None
        task = load_task(args.task, device=args.device)
        gt = None
        if args.gt:
            with Image.open(next(iter(images.values()))) as first:
                size = (first.height, first.width)
            gt = read_mask(args.gt, size, len(classes))
        fig = figure_from_files(task, images, classes, gt, box, zoom=args.zoom)
        with owned.writing(args.out) as tmp:
            fig.save(tmp, format="PNG")
    except ValueError as exc:  # a malformed --image / --crop / --classes value
        raise cli.UsageError(str(exc)) from None
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
