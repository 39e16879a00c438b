"""Detections drawn on SR crops for the qualitative comparison (the paper's Figure 4): one PNG per method.

``detect(model, image_path, imgsz, conf, iou)`` runs the detector the way ultralytics' predictor does
(letterbox to ``imgsz``, NMS, boxes scaled back to the image); ``draw(image_path, detections, names, out,
crop=...)`` draws them (and optionally the ground truth, dashed) on a crop of the image, enlarged by an integer
factor with nearest-neighbour so SR pixels stay visible. ``figure_per_method`` does both for each method's image
of the same frame, with the same crop, and writes ``<out_dir>/<frame>_<method>.png``; ``figure_from_task`` does
it with a benchmark's detection task (``downstream.tasks.load_task(config)``, used by ``reports.qualitative``).

Command line: ``python -m downstream.detection.figure --weights W --imgsz 640 --crop x1,y1,x2,y2 --out DIR
METHOD=IMAGE ...`` (labels optional: ``--labels file.txt`` YOLO txt for the ground truth).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from sr import cli
from sr.cli import cli_entry
from sr.ownership import add_overwrite_option, claim_folder

# one colour per class id (M3FD order: People, Car, Bus, Motorcycle, Lamp, Truck), then cycled
COLOURS = [
    (255, 56, 56),
    (56, 200, 255),
    (255, 178, 29),
    (72, 249, 10),
    (207, 110, 255),
    (255, 120, 180),
    (0, 255, 200),
    (255, 255, 80),
]


@torch.no_grad()
def detect(
    model: torch.nn.Module,
    image_path: str | Path,
    *,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    device: str = "cpu",
) -> np.ndarray:
    """(M, 6) x1, y1, x2, y2, conf, cls in pixels of the image at ``image_path``; ``device`` in the project's
    spelling (``auto`` included, a task's default)."""
    from downstream.detection.offline import ultralytics_offline
    from sr.runtime import resolve_device

    device = resolve_device(device)

    ultralytics_offline()
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils import nms, ops

    with Image.open(image_path) as img:
        rgb = np.asarray(img.convert("RGB"))
    boxed = LetterBox((imgsz, imgsz), auto=False, stride=32)(image=rgb)
    x = torch.from_numpy(np.ascontiguousarray(boxed.transpose(2, 0, 1)))[None].float().div(255).to(device)
    model = model.to(device).float().eval()
    pred = model(x)
    out = nms.non_max_suppression(pred[0] if isinstance(pred, (list, tuple)) else pred, conf, iou, max_det=max_det)[0]
    if len(out):
        out[:, :4] = ops.scale_boxes(x.shape[2:], out[:, :4], rgb.shape[:2])
    return out[:, :6].cpu().numpy()


def _font(size: int):
    from downstream.detection.offline import find_font

    try:
        return ImageFont.truetype(str(find_font()), size)
    except Exception:
        return ImageFont.load_default()


def draw(
    image_path: str | Path,
    detections: np.ndarray,
    names: list[str] | tuple[str, ...],
    out: str | Path,
    *,
    crop: tuple[int, int, int, int] | None = None,
    zoom: int | None = None,
    gt: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Draw ``detections`` (M, 6) and optional ``gt`` (N, 5) on ``crop`` (x1, y1, x2, y2) of the image."""
    with Image.open(image_path) as img:
        rgb = img.convert("RGB")
    x0, y0, x1, y1 = crop or (0, 0, rgb.width, rgb.height)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(rgb.width, x1), min(rgb.height, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop {crop} is outside the {rgb.width}x{rgb.height} image {image_path}")
    zoom = zoom or max(1, int(512 // max(x1 - x0, y1 - y0)))
    canvas = rgb.crop((x0, y0, x1, y1)).resize(((x1 - x0) * zoom, (y1 - y0) * zoom), Image.NEAREST)
    pen = ImageDraw.Draw(canvas)
    font = _font(max(10, 5 * zoom if zoom < 4 else 14))
    width = max(2, zoom)

    def to_canvas(b):
        return [(b[0] - x0) * zoom, (b[1] - y0) * zoom, (b[2] - x0) * zoom, (b[3] - y0) * zoom]

    if gt is not None:
        for _c, *box in np.asarray(gt).reshape(-1, 5):
            bx = to_canvas(box)
            for i in range(0, 4):  # dashed white rectangle
                pts = [(bx[0], bx[1]), (bx[2], bx[1]), (bx[2], bx[3]), (bx[0], bx[3])]
                a, b = pts[i], pts[(i + 1) % 4]
                n = max(1, int(max(abs(b[0] - a[0]), abs(b[1] - a[1])) // 8))
                for k in range(0, n, 2):
                    pen.line(
                        [
                            (a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n),
                            (a[0] + (b[0] - a[0]) * (k + 1) / n, a[1] + (b[1] - a[1]) * (k + 1) / n),
                        ],
                        fill=(255, 255, 255),
                        width=1,
                    )
    for *box, score, c in np.asarray(detections).reshape(-1, 6):
        colour = COLOURS[int(c) % len(COLOURS)]
        bx = to_canvas(box)
        pen.rectangle(bx, outline=colour, width=width)
        label = f"{names[int(c)] if int(c) < len(names) else int(c)} {score:.2f}"
        tx, ty = bx[0], max(0, bx[1] - font.size - 4)
        pen.rectangle(pen.textbbox((tx, ty), label, font=font), fill=colour)
        pen.text((tx, ty), label, fill=(0, 0, 0), font=font)
    if title:
        pen.rectangle(pen.textbbox((4, 4), title, font=font), fill=(0, 0, 0))
        pen.text((4, 4), title, fill=(255, 255, 255), font=font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out


def figure_per_method(
    model: torch.nn.Module,
    images: dict[str, str | Path],
    out_dir: str | Path,
    *,
    names: list[str] | tuple[str, ...],
    crop: tuple[int, int, int, int] | None = None,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    gt: np.ndarray | None = None,
    frame: str = "frame",
    device: str = "cpu",
) -> dict[str, Path]:
    """One PNG per method: the method's SR image of one frame, same crop, its detections drawn."""
    sizes = {m: Image.open(p).size for m, p in images.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the methods' images differ in size {sizes}: compare SR outputs at the HR size")
    paths = {}
    for method, path in images.items():
        dets = detect(model, path, imgsz=imgsz, conf=conf, iou=iou, device=device)
        paths[method] = draw(path, dets, names, Path(out_dir) / f"{frame}_{method}.png", crop=crop, gt=gt, title=method)
    return paths


def tile(paths: list[Path], columns: int = 4, pad: int = 6) -> Image.Image:
    """The pictures at ``paths`` side by side, ``columns`` per row, on white."""
    pictures = []
    for p in paths:
        with Image.open(p) as im:
            pictures.append(im.convert("RGB"))
    if not pictures:
        raise ValueError("no pictures to tile")
    w, h = max(p.width for p in pictures), max(p.height for p in pictures)
    cols = min(columns, len(pictures))
    rows = (len(pictures) + cols - 1) // cols
    canvas = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for k, picture in enumerate(pictures):
        canvas.paste(picture, (pad + (k % cols) * (w + pad), pad + (k // cols) * (h + pad)))
    return canvas


def figure_from_task(
    task: Any,
    images: dict[str, str | Path],
    out_dir: str | Path,
    *,
    crop: tuple[int, int, int, int] | None = None,
    gt: np.ndarray | None = None,
    frame: str = "frame",
    conf: float = 0.25,
    class_names: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """``figure_per_method`` with a :class:`~downstream.detection.task.DetectionTask`'s detector, input size,
    NMS IoU and device (``conf`` is a display threshold, not the task's mAP one)."""
    task._load(tuple(class_names or ()))
    return figure_per_method(
        task._model,
        images,
        out_dir,
        names=task.class_names,
        crop=crop,
        imgsz=task.imgsz,
        conf=conf,
        iou=task.iou,
        gt=gt,
        frame=frame,
        device=task.device,
    )


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="python -m downstream.detection.figure", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", help="METHOD=IMAGE pairs (SR outputs of the same frame)")
    parser.add_argument("--weights", required=True, help="detector weights (registry name or path)")
    parser.add_weights_dir()
    parser.add_argument("--imgsz", type=cli.positive_int, default=640)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--crop", help="x1,y1,x2,y2 in pixels of the SR image (default: whole image)")
    parser.add_argument("--labels", help="YOLO txt ground truth of the frame, drawn dashed")
    parser.add_argument("--frame", default="frame")
    parser.add_argument("--out", type=cli.dir_path, required=True, help="folder of the figures (one per method)")
    add_overwrite_option(parser)
    opts = parser.parse_args(argv)
    from downstream.detection.yolo import load_detector

    try:
        images = dict(pair.split("=", 1) for pair in opts.images)
        entries = [f"{opts.frame}_{method}.png" for method in images]
        claim_folder(opts.out, "detection figures", entries, overwrite=opts.overwrite)  # before any work
        model, _, header = load_detector(opts.weights, opts.weights_dir)
        crop = tuple(int(v) for v in opts.crop.split(",")) if opts.crop else None
        gt = None
        if opts.labels:
            from downstream.labels import read_yolo_txt

            w, h = Image.open(next(iter(images.values()))).size
            gt = read_yolo_txt(opts.labels, w, h, len(header["names"]))
        paths = figure_per_method(
            model,
            images,
            opts.out,
            names=header["names"],
            crop=crop,
            imgsz=opts.imgsz,
            conf=opts.conf,
            gt=gt,
            frame=opts.frame,
        )
    except ValueError as exc:  # a malformed METHOD=IMAGE / --crop value
        raise cli.UsageError(str(exc)) from None
    for method, path in paths.items():
        print(f"{method}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
