"""Turn a data-set download into the layout the harness reads.

``python -m downstream.segmentation.prepare fmb --src <download> --out <root>``

FMB (SegMiF's release) is accepted in either layout:

* split folders: ``<src>/train/{Infrared,Label}/`` and ``<src>/test/{Infrared,Label}/`` (the official
  archive; other folders such as ``Visible/`` and ``Visual/`` are ignored);
* flat: ``<src>/{Infrared,Label}/`` with ``train.txt`` / ``test.txt`` lists of file names.

The output is what the ``fmb`` data-set kind reads: ``<out>/Infrared/<id>.png``,
``<out>/Label/<id>.png`` (single-channel class ids 0..14, 0 = unlabeled) and ``<out>/train.txt`` /
``<out>/test.txt``. Label images are converted to ids: gray or palette-indexed PNGs are taken as
ids already (a palette image's indices, not its colours); gray stored as RGB uses one channel; a
colour label image needs ``--palette FILE`` (YAML/JSON mapping ``"r,g,b": id``) and any colour
outside it is an error naming the file. When the train and test folders reuse a file name, ids
get a ``train_`` / ``test_`` prefix. Every pair is checked (label exists, same size, ids in
range) before anything is written; infrared frames are copied unchanged (``--symlink`` links them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from downstream.errors import DataError
from downstream.imageio import IMAGE_SUFFIXES
from sr.atomic import atomic_path, atomic_write_text
from sr.errors import UserError

FMB_NUM_CLASSES = 15
SPLITS = ("train", "test")


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _find_pairs(src: Path, images: str, labels: str) -> dict[str, list[tuple[str, Path, Path]]]:
    """split -> [(stem, infrared path, label path)], from either accepted layout."""
    pairs: dict[str, list[tuple[str, Path, Path]]] = {}
    if all((src / s / images).is_dir() for s in SPLITS):
        for split in SPLITS:
            ir, lab = _images(src / split / images), src / split / labels
            if not lab.is_dir():
                raise DataError(f"{lab}: label folder missing")
            lab_files = _images(lab)
            missing = sorted(set(ir) - set(lab_files))
            if missing:
                raise DataError(f"{lab}: no label for {len(missing)} infrared frame(s), e.g. {missing[:5]}")
            pairs[split] = [(stem, ir[stem], lab_files[stem]) for stem in ir]
        return pairs
    if (src / images).is_dir() and (src / labels).is_dir():
        ir, lab_files = _images(src / images), _images(src / labels)
        for split in SPLITS:
            lst = src / f"{split}.txt"
            if not lst.is_file():
                raise DataError(f"{src}: flat layout needs {lst.name} (one file name per line)")
            stems = [Path(line.strip()).stem for line in lst.read_text().splitlines() if line.strip()]
            for stem in stems:
                if stem not in ir:
                    raise DataError(f"{lst}: {stem!r} has no infrared frame in {src / images}")
                if stem not in lab_files:
                    raise DataError(f"{lst}: {stem!r} has no label in {src / labels}")
            pairs[split] = [(stem, ir[stem], lab_files[stem]) for stem in stems]
        return pairs
    raise DataError(f"{src}: not an FMB download: expected train/{images}, train/{labels}, test/... "
                    f"or {images}/, {labels}/ with train.txt and test.txt")


def read_palette(path: str | os.PathLike) -> dict[tuple[int, int, int], int]:
    from sr.config import read_yaml

    raw = read_yaml(path) if str(path).endswith((".yaml", ".yml")) else json.loads(Path(path).read_text())
    try:
        return {tuple(int(c) for c in str(k).split(",")): int(v) for k, v in raw.items()}
    except (ValueError, AttributeError):
        raise UserError(f"{path}: palette must map 'r,g,b' strings to ids") from None


def label_to_ids(path: Path, palette: dict[tuple[int, int, int], int] | None = None,
                 num_classes: int = FMB_NUM_CLASSES) -> np.ndarray:
    """A label image (ids as gray / palette indices / gray RGB, or colours via ``palette``) -> uint8 ids."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("L", "P", "I", "I;16"):
                ids = np.asarray(img).astype(np.int64)
            elif mode in ("RGB", "RGBA"):
                rgb = np.asarray(img.convert("RGB")).astype(np.int64)
                if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]) \
                        and rgb[..., 0].max() < num_classes:
                    ids = rgb[..., 0]
                elif palette is None:
                    raise DataError(f"{path}: colour label image; pass --palette FILE mapping 'r,g,b' to ids")
                else:
                    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
                    ids = np.full(code.shape, -1, np.int64)
                    for (r, g, b), idx in palette.items():
                        ids[code == ((r << 16) | (g << 8) | b)] = idx
                    if (ids < 0).any():
                        bad = np.unique(code[ids < 0])[:5]
                        raise DataError(f"{path}: colours {[((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in bad]} "
                                        "are not in the palette")
            else:
                raise DataError(f"{path}: unsupported label image mode {mode!r}")
    except OSError as exc:
        raise DataError(f"{path}: cannot read label image ({exc})") from None
    bad = np.unique(ids[(ids < 0) | (ids >= num_classes)])
    if bad.size:
        raise DataError(f"{path}: label ids {bad[:10].tolist()} outside 0..{num_classes - 1}")
    return ids.astype(np.uint8)


def prepare_fmb(src: str | os.PathLike, out: str | os.PathLike, *, images: str = "Infrared", labels: str = "Label",
                palette: dict[tuple[int, int, int], int] | None = None, symlink: bool = False) -> dict[str, int]:
    """Write the harness layout of FMB under ``out``; returns the number of frames per split."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.is_dir():
        raise DataError(f"FMB download folder {src} does not exist")
    pairs = _find_pairs(src, images, labels)
    stems = [stem for split in SPLITS for stem, _, _ in pairs[split]]
    prefix = len(stems) != len(set(stems))
    converted: list[tuple[str, str, Path, np.ndarray]] = []
    for split in SPLITS:
        for stem, ir_path, lab_path in pairs[split]:
            ids = label_to_ids(lab_path, palette)
            with Image.open(ir_path) as img:
                size = img.size
            if ids.shape != (size[1], size[0]):
                raise DataError(f"{lab_path}: label is {ids.shape[1]}x{ids.shape[0]}, infrared frame "
                                f"{ir_path} is {size[0]}x{size[1]}")
            converted.append((split, f"{split}_{stem}" if prefix else stem, ir_path, ids))
    (out / "Infrared").mkdir(parents=True, exist_ok=True)
    (out / "Label").mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {s: [] for s in SPLITS}
    for split, new_id, ir_path, ids in converted:
        dst = out / "Infrared" / f"{new_id}{ir_path.suffix.lower()}"
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if symlink:
            dst.symlink_to(ir_path.resolve())
        else:
            with atomic_path(dst) as tmp:
                shutil.copyfile(ir_path, tmp)
        with atomic_path(out / "Label" / f"{new_id}.png") as tmp:
            Image.fromarray(ids, mode="L").save(tmp, format="PNG")
        lists[split].append(f"{new_id}{ir_path.suffix.lower()}")
    for split in SPLITS:
        atomic_write_text(out / f"{split}.txt", "\n".join(lists[split]) + "\n")
    return {s: len(v) for s, v in lists.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m downstream.segmentation.prepare",
                                     description="Prepare a segmentation data set from its download.")
    parser.add_argument("dataset", choices=["fmb"])
    parser.add_argument("--src", required=True, help="the unpacked download")
    parser.add_argument("--out", required=True, help="the data-set root to write (the 'root' of its YAML)")
    parser.add_argument("--images", default="Infrared", help="infrared folder name (default Infrared)")
    parser.add_argument("--labels", default="Label", help="label folder name (default Label)")
    parser.add_argument("--palette", help="YAML/JSON 'r,g,b': id map for colour label images")
    parser.add_argument("--symlink", action="store_true", help="link the infrared frames instead of copying")
    args = parser.parse_args(argv)
    try:
        counts = prepare_fmb(args.src, args.out, images=args.images, labels=args.labels,
                             palette=read_palette(args.palette) if args.palette else None, symlink=args.symlink)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"FMB prepared in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
