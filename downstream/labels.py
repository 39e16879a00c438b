"""Reading detection boxes (YOLO txt, VOC XML) and segmentation masks, with checks that name the file.

Conventions (documented in the README):
* boxes are returned as float32 (N, 5): class id, x1, y1, x2, y2 in pixels of the image;
* a box that extends past the image is clipped to it; a box with zero or negative width/height in
  the file, a non-numeric field, a wrong field count or an unknown class is a LabelError naming the
  file and line; a box that clips to nothing (entirely outside the image) is dropped;
* a value that is not finite (``nan``, ``inf``) is a LabelError naming the file and line;
* an empty label file means "no objects" (valid);
* class names are data: one with a control character (a line break, an escape sequence) is a LabelError naming
  the file and line (:func:`check_class_name`); a path an annotation names must stay inside the folders it
  belongs to (:func:`check_inside`): absolute paths, ``..`` and symlinks that lead out are refused;
* a mask must have the image's size; values outside the known ids (and not the ignore value) are a
  LabelError listing them.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from downstream.errors import LabelError
from downstream.imageio import open_image
from downstream.sample import IGNORE_INDEX

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_class_name(name: str, where: str) -> str:
    """``name`` when it is a usable class name; a LabelError naming ``where`` (file:line) otherwise."""
    if not name or _CONTROL.search(name):
        what = "is empty" if not name else "contains a control character (line break, tab, escape, ...)"
        raise LabelError(f"{where}: class name {name!r} {what}; class names are written into every report")
    return name


def check_inside(path: str | os.PathLike, roots, where: str) -> Path:
    """``path`` resolved (symlinks followed) when it lies inside one of ``roots``; a LabelError naming ``where``
    otherwise (an annotation or a symlink must not pull a file from elsewhere on the disk)."""
    resolved = Path(path).resolve()
    folders = [Path(r).resolve() for r in roots if r is not None]
    if not any(resolved.is_relative_to(folder) for folder in folders):
        raise LabelError(
            f"{where}: {path} leads outside the source ({', '.join(map(str, folders))}); refused: annotations may "
            "only name files inside the data set"
        )
    return resolved


def check_relative(name: str, where: str) -> Path:
    """A file name from an annotation as a relative path without ``..``; a LabelError naming ``where`` otherwise."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise LabelError(f"{where}: file name {name!r} is absolute or climbs out with '..'; refused")
    return rel


def _finish_boxes(rows: list[list[float]], width: int, height: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, 5), dtype=np.float32)
    boxes = np.asarray(rows, dtype=np.float32)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, width)
    boxes[:, [2, 4]] = boxes[:, [2, 4]].clip(0, height)
    keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 4] > boxes[:, 2])
    return boxes[keep]


def read_yolo_txt(path: str | os.PathLike, width: int, height: int, num_classes: int) -> np.ndarray:
    """YOLO rows ``cls xc yc w h`` (normalised) -> pixel boxes."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise LabelError(f"{path}:{lineno}: expected 5 fields 'cls xc yc w h', got {len(fields)}")
        try:
            cls = int(float(fields[0]))
            xc, yc, bw, bh = map(float, fields[1:])
        except ValueError:
            raise LabelError(f"{path}:{lineno}: non-numeric field in {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in (xc, yc, bw, bh)) or not math.isfinite(float(fields[0])):
            raise LabelError(f"{path}:{lineno}: non-finite value in {line.strip()!r} (nan / inf are not coordinates)")
        if not 0 <= cls < num_classes or float(fields[0]) != cls:
            raise LabelError(f"{path}:{lineno}: class id {fields[0]} outside 0..{num_classes - 1}")
        if bw <= 0 or bh <= 0:
            raise LabelError(f"{path}:{lineno}: box with non-positive size w={bw} h={bh}")
        rows.append([cls, (xc - bw / 2) * width, (yc - bh / 2) * height, (xc + bw / 2) * width, (yc + bh / 2) * height])
    return _finish_boxes(rows, width, height)


def read_voc_xml(
    path: str | os.PathLike, class_ids: dict[str, int], width: int, height: int, skip: tuple[str, ...] = ()
) -> np.ndarray:
    """Pascal VOC ``<object><name/><bndbox/>`` -> pixel boxes; names in ``skip`` are ignored."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise LabelError(f"{path}: invalid XML ({exc})") from None
    lookup = {k.lower(): v for k, v in class_ids.items()}
    rows = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name in skip:
            continue
        if name.lower() not in lookup:
            raise LabelError(f"{path}: unknown class {name!r}; known: {', '.join(class_ids)}")
        box = obj.find("bndbox")
        try:
            x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise LabelError(f"{path}: object {name!r} has a missing or non-numeric bndbox") from None
        if not all(map(math.isfinite, (x1, y1, x2, y2))):
            raise LabelError(f"{path}: object {name!r} has a non-finite bndbox ({x1},{y1},{x2},{y2})")
        if x2 <= x1 or y2 <= y1:
            raise LabelError(f"{path}: object {name!r} has non-positive size ({x1},{y1},{x2},{y2})")
        rows.append([lookup[name.lower()], x1, y1, x2, y2])
    return _finish_boxes(rows, width, height)


def read_mask(
    path: str | os.PathLike,
    size: tuple[int, int],
    num_classes: int,
    value_map: dict[int, int] | None = None,
    palette: dict[tuple[int, int, int], int] | None = None,
) -> np.ndarray:
    """Read a label image as uint8 ids of shape ``size`` = (H, W).

    ``value_map`` remaps raw gray values (e.g. SIRST's {0: 0, 255: 1}); ``palette`` maps RGB colours
    of colour label images to ids. Values that end up outside 0..num_classes-1 and are not
    IGNORE_INDEX raise a LabelError.
    """
    path = Path(path)
    with open_image(path, LabelError) as img:
        if palette is not None and img.mode in ("RGB", "RGBA", "P"):
            rgb = np.asarray(img.convert("RGB")).astype(np.int32)
            code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
            ids = np.full(code.shape, IGNORE_INDEX, dtype=np.uint8)
            for colour, idx in palette.items():
                ids[code == ((colour[0] << 16) | (colour[1] << 8) | colour[2])] = idx
            raw = ids
        else:
            raw = np.asarray(img if img.mode in ("L", "P", "I", "I;16") else img.convert("L")).astype(np.int64)
    if raw.ndim != 2:
        raise LabelError(f"{path}: expected a single-channel mask, got shape {raw.shape}")
    if raw.shape != tuple(size):
        raise LabelError(f"{path}: mask is {raw.shape[1]}x{raw.shape[0]}, image is {size[1]}x{size[0]}")
    if value_map is not None:
        out = np.full(raw.shape, IGNORE_INDEX, dtype=np.int64)
        for src, dst in value_map.items():
            out[raw == src] = dst
        unknown = np.setdiff1d(np.unique(raw), list(value_map))
        if unknown.size:
            raise LabelError(f"{path}: mask values {unknown[:10].tolist()} not in the value map {value_map}")
        raw = out
    bad = np.setdiff1d(np.unique(raw), list(range(num_classes)) + [IGNORE_INDEX])
    if bad.size:
        raise LabelError(f"{path}: mask ids {bad[:10].tolist()} outside 0..{num_classes - 1}")
    return raw.astype(np.uint8)
