"""Prepare M3FD for the harness: ``python -m downstream.detection.prepare m3fd --src DOWNLOAD --out ROOT``.

Input: the official M3FD detection download (``M3FD_Detection``): infrared frames in ``Ir/`` and Pascal VOC XML
boxes in ``Annotation/`` (folder names matched case-insensitively; ``ir``, ``infrared``, ``Annotations``, ``xml``
also work), or YOLO txt labels in ``labels/`` (``cls xc yc w h``, class ids in the order below). ``--images`` /
``--annotations`` name the folders explicitly.

Output under ROOT (what ``configs/datasets/m3fd_*.yaml`` read; ROOT is ``$IRSR_DATA_DIR/m3fd`` by default):

* ``ir/<id>.png``: the infrared frames (hard-linked or copied when already PNG, converted otherwise);
* ``labels/<id>.txt``: YOLO txt boxes, classes 0..5 = People, Car, Bus, Motorcycle, Lamp, Truck (the M3FD
  README order; VOC names are matched case-insensitively, an unknown name is an error naming the file);
* ``meta/{train,val,test,set5,set15,set20}.txt``: the split lists. The official release has no split: by default
  ids are sorted, permuted with ``numpy.random.default_rng(20250301)`` and cut 70/10/20 %
  (``downstream.datasets.splits``; Set5/15/20 are nested subsets of test). ``--splits DIR`` uses the user's
  ``train.txt`` / ``val.txt`` / ``test.txt`` (one id or file name per line) instead; ids listed there must exist.
* ``meta/PREPARED.txt``: source folder, counts per class and split, the split rule.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from downstream.datasets.m3fd import M3FD_CLASSES
from downstream.datasets.splits import SPLIT_SEED, SUBSETS, deterministic_splits
from downstream.detection.data import yolo_lines
from downstream.errors import DataError
from downstream.imageio import IMAGE_SUFFIXES
from downstream.labels import read_voc_xml, read_yolo_txt
from sr.errors import UserError

_IMAGE_DIRS = ("ir", "infrared", "thermal", "images")
_VOC_DIRS = ("annotation", "annotations", "xml", "voc")
_YOLO_DIRS = ("labels", "label", "yolo")


def _find_dir(src: Path, names: tuple[str, ...]) -> Path | None:
    children = {p.name.lower(): p for p in src.iterdir() if p.is_dir()}
    for name in names:
        if name in children:
            return children[name]
    return None


def _place_image(src: Path, dst: Path, copy: bool) -> None:
    dst.unlink(missing_ok=True)
    if src.suffix.lower() == ".png":
        if not copy:
            try:
                os.link(src, dst)
                return
            except OSError:
                pass
        shutil.copyfile(src, dst)
    else:
        with Image.open(src) as img:
            img.save(dst, format="PNG")


def _read_split_files(split_dir: Path) -> dict[str, list[str]]:
    splits = {}
    for name in ("train", "val", "test"):
        f = split_dir / f"{name}.txt"
        if not f.is_file():
            raise UserError(f"--splits {split_dir}: {f.name} is missing (need train.txt, val.txt, test.txt)")
        splits[name] = sorted({Path(line.strip()).stem for line in f.read_text().splitlines() if line.strip()})
    return splits


def prepare_m3fd(src: Path, out: Path, *, images: Path | None = None, annotations: Path | None = None,
                 split_dir: Path | None = None, seed: int = SPLIT_SEED, copy: bool = False) -> dict:
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"--src {src} is not a folder")
    image_dir = Path(images) if images else _find_dir(src, _IMAGE_DIRS)
    if image_dir is None or not image_dir.is_dir():
        raise UserError(f"no infrared image folder in {src} (looked for {', '.join(_IMAGE_DIRS)}, any case); "
                        "pass --images")
    ann_dir = Path(annotations) if annotations else (_find_dir(src, _VOC_DIRS) or _find_dir(src, _YOLO_DIRS))
    if ann_dir is None or not ann_dir.is_dir():
        raise UserError(f"no annotation folder in {src} (VOC: {', '.join(_VOC_DIRS)}; YOLO txt: "
                        f"{', '.join(_YOLO_DIRS)}); pass --annotations")
    frames = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not frames:
        raise UserError(f"no images in {image_dir}")
    voc = any(p.suffix.lower() == ".xml" for p in ann_dir.iterdir())
    class_ids = {c: i for i, c in enumerate(M3FD_CLASSES)}

    (out / "ir").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "meta").mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    for sample_id, path in frames.items():
        label = ann_dir / f"{sample_id}.{'xml' if voc else 'txt'}"
        if not label.is_file():
            raise DataError(f"{label}: annotation missing for image {path}")
        with Image.open(path) as img:
            width, height = img.size
        boxes = (read_voc_xml(label, class_ids, width, height) if voc
                 else read_yolo_txt(label, width, height, len(M3FD_CLASSES)))
        counts.update(M3FD_CLASSES[int(c)] for c in boxes[:, 0])
        _place_image(path, out / "ir" / f"{sample_id}.png", copy)
        (out / "labels" / f"{sample_id}.txt").write_text(yolo_lines(boxes, width, height))

    ids = sorted(frames)
    if split_dir is not None:
        splits = _read_split_files(Path(split_dir))
        unknown = sorted(set().union(*splits.values()) - set(ids))
        if unknown:
            raise DataError(f"--splits {split_dir}: {len(unknown)} ids have no frame (e.g. {unknown[0]})")
        test = splits["test"]
        order = np.random.default_rng(seed).permutation(len(test))
        for subset, n in SUBSETS.items():
            splits[subset] = sorted(test[i] for i in order[:n])
        rule = f"user split files from {split_dir}; set5/15/20 drawn from test with seed {seed}"
    else:
        splits = deterministic_splits(ids, seed)
        rule = f"downstream.datasets.splits.deterministic_splits(seed={seed}): sorted ids, permuted, 70/10/20 %"
    for name, members in splits.items():
        if name == "all":
            continue
        (out / "meta" / f"{name}.txt").write_text("".join(f"{i}\n" for i in members))
    summary = {"frames": len(ids), "boxes": sum(counts.values()), "per_class": dict(counts),
               "splits": {k: len(v) for k, v in splits.items() if k != "all"}, "rule": rule}
    (out / "meta" / "PREPARED.txt").write_text(
        f"M3FD prepared by python -m downstream.detection.prepare m3fd\nsource images: {image_dir}\n"
        f"source labels: {ann_dir} ({'VOC XML' if voc else 'YOLO txt'})\nclasses: {', '.join(M3FD_CLASSES)}\n"
        f"frames: {len(ids)}, boxes: {summary['boxes']}, per class: {dict(counts)}\nsplits: {summary['splits']}\n"
        f"split rule: {rule}\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m downstream.detection.prepare",
                                     description="Turn a data-set download into the layout the harness reads.")
    parser.add_argument("dataset", choices=["m3fd"])
    parser.add_argument("--src", required=True, help="the unpacked official download")
    parser.add_argument("--out", help="output root (default: $IRSR_DATA_DIR/m3fd)")
    parser.add_argument("--images", help="infrared image folder (default: found under --src)")
    parser.add_argument("--annotations", help="VOC XML or YOLO txt folder (default: found under --src)")
    parser.add_argument("--splits", help="folder with train.txt, val.txt, test.txt (default: deterministic split)")
    parser.add_argument("--seed", type=int, default=SPLIT_SEED, help=f"split seed (default {SPLIT_SEED})")
    parser.add_argument("--copy", action="store_true", help="copy PNG frames instead of hard-linking them")
    opts = parser.parse_args(argv)
    from downstream.datasets.base import resolve_root

    out = Path(opts.out) if opts.out else resolve_root("m3fd")
    try:
        summary = prepare_m3fd(Path(opts.src), out, images=opts.images and Path(opts.images),
                               annotations=opts.annotations and Path(opts.annotations),
                               split_dir=opts.splits and Path(opts.splits), seed=opts.seed, copy=opts.copy)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"prepared {out}: {summary['frames']} frames, {summary['boxes']} boxes {summary['per_class']}, "
          f"splits {summary['splits']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
