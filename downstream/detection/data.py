"""Writing YOLO-format data sets (``images/<split>/``, ``labels/<split>/``, ``data.yaml``) for ultralytics.

Sources: the runner's :class:`~downstream.tasks.TaskItem` s (SR outputs on disk: linked, never re-encoded, so the
detector sees exactly the bytes the method produced), or harness :class:`~downstream.sample.Sample` s / synthir
scenes (HR frames written as 8-bit PNGs). Labels are YOLO txt: ``cls xc yc w h`` normalised by the image size,
with 8 decimals, so boxes survive the round trip to well below a thousandth of a pixel.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from downstream.errors import DataError
from downstream.imageio import image_size

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(index: int, sample_id: str) -> str:
    """A file stem unique per index and readable: ``000012_<id with odd characters replaced>``."""
    return f"{index:06d}_{_SAFE.sub('_', str(sample_id))[:80]}"


def yolo_lines(boxes: np.ndarray | None, width: int, height: int) -> str:
    """Pixel boxes (N, 5) cls, x1, y1, x2, y2 -> YOLO txt text (empty for no boxes)."""
    if boxes is None or len(boxes) == 0:
        return ""
    b = np.asarray(boxes, np.float64).reshape(-1, 5)
    x1, y1 = b[:, 1].clip(0, width), b[:, 2].clip(0, height)
    x2, y2 = b[:, 3].clip(0, width), b[:, 4].clip(0, height)
    keep = (x2 > x1) & (y2 > y1)
    rows = [
        f"{int(c)} {(a + e) / 2 / width:.8f} {(d + f) / 2 / height:.8f} {(e - a) / width:.8f} {(f - d) / height:.8f}"
        for c, a, d, e, f in zip(b[keep, 0], x1[keep], y1[keep], x2[keep], y2[keep])
    ]
    return "\n".join(rows) + "\n"


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # a hard link keeps the path under images/ (ultralytics derives labels/ from it)
    except OSError:
        shutil.copyfile(src, dst)


def _fresh_split_dirs(root: Path, split: str) -> tuple[Path, Path]:
    """Empty ``images/<split>`` and ``labels/<split>`` under ``root`` (and drop ultralytics' label cache)."""
    img_dir, lbl_dir = root / "images" / split, root / "labels" / split
    (root / "labels" / f"{split}.cache").unlink(missing_ok=True)  # ultralytics' label cache of a previous run
    for d in (img_dir, lbl_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    return img_dir, lbl_dir


def write_split_from_files(
    root: Path, split: str, entries: Iterable[tuple[str, Path, np.ndarray | None]]
) -> list[tuple[str, Path]]:
    """Link each image into ``root/images/<split>`` and write its labels; returns (id, linked path) in order."""
    img_dir, lbl_dir = _fresh_split_dirs(root, split)
    out = []
    for i, (sample_id, path, boxes) in enumerate(entries):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"image of item {sample_id!r} not found: {path}")
        stem = safe_name(i, sample_id)
        dst = img_dir / f"{stem}{path.suffix.lower() or '.png'}"
        _link_or_copy(path, dst)
        width, height = image_size(dst)
        if boxes is not None and len(boxes):
            b = np.asarray(boxes, np.float64).reshape(-1, 5)
            if b[:, 3].max() > width * 1.01 + 1 or b[:, 4].max() > height * 1.01 + 1:
                raise DataError(
                    f"{path}: image is {width}x{height} but its boxes reach x={b[:, 3].max():.0f}, "
                    f"y={b[:, 4].max():.0f}: detection needs images at the labels' (HR) resolution; "
                    "was an LR-size image passed without upsampling?"
                )
        (lbl_dir / f"{stem}.txt").write_text(yolo_lines(boxes, width, height))
        out.append((sample_id, dst))
    return out


def write_split_from_arrays(
    root: Path, split: str, entries: Iterable[tuple[str, np.ndarray, np.ndarray | None]]
) -> int:
    """Write uint8 (H, W) or (H, W, C) arrays as PNGs with their labels; returns the number written."""
    img_dir, lbl_dir = _fresh_split_dirs(root, split)
    n = 0
    for i, (sample_id, image, boxes) in enumerate(entries):
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise DataError(f"sample {sample_id!r}: expected a uint8 image, got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        stem = safe_name(i, sample_id)
        Image.fromarray(image).save(img_dir / f"{stem}.png")
        (lbl_dir / f"{stem}.txt").write_text(yolo_lines(boxes, image.shape[1], image.shape[0]))
        n += 1
    return n


def sample_arrays(samples: Iterable) -> Iterable[tuple[str, np.ndarray, np.ndarray | None]]:
    """Harness Samples -> (id, uint8 HR image, boxes); a sample without HR or boxes is an error."""
    from downstream.imageio import to_uint8

    for s in samples:
        if s.hr is None:
            raise DataError(f"sample {s.id!r} ({s.source}): training a detector needs HR frames")
        if s.boxes is None:
            raise DataError(f"sample {s.id!r} ({s.source}): the data set has no detection boxes")
        yield s.id, to_uint8(s.hr.permute(1, 2, 0).numpy()), s.boxes


def write_data_yaml(root: Path, names: list[str] | tuple[str, ...], splits: dict[str, str]) -> Path:
    """``data.yaml`` for ultralytics: path, the split folders (``images/<split>``), nc and names."""
    cfg = {
        "path": str(Path(root).resolve()),
        **{k: f"images/{v}" for k, v in splits.items()},
        "nc": len(names),
        "names": {i: n for i, n in enumerate(names)},
        "channels": 3,
    }
    path = Path(root) / "data.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
