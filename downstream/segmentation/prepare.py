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
range) before anything is written; infrared frames are copied unchanged (``--link`` hard-links them).

``python -m downstream.segmentation.prepare masks --src <folder> --out <root>`` prepares any image + mask
folder pair (SIRST-like small-target masks, or a user's own id masks) into the ``prepared`` layout
(``downstream.datasets.prepared``) with ``<root>/dataset.yaml``. Images are found in ``--images`` (default: a
folder named images / ir / infrared / thermal under ``--src``), masks in ``--masks`` (default: masks / mask /
labels / annotations), paired by file stem (or ``<id>_<suffix>``, as SIRST-v2's ``_pixels0``). Class names:
``--classes FILE`` (one per line, in id order), else
``background, target`` for binary masks. Mask values: palette (P) masks give their indices; L, I, gray RGB and
RGBA masks give their values, where a binary 0/255 mask (two classes) maps 255 to 1; colour masks need
``--palette``. Values outside the classes are an error naming the file. Splits: ``--splits DIR`` (train.txt,
val.txt, test.txt), else the deterministic seeded 70 / 10 / 20 % split.

Both commands build the output in a temporary folder beside ``--out`` and rename it into place at the end:
a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from tqdm import tqdm

from downstream.datasets.discover import frame_id, pair_files
from downstream.datasets.prepared import (
    DATASET_FILE,
    ROOT_HERE,
    SPLIT_NAMES,
    place_file,
    read_class_file,
    seeded_splits,
    staged_output,
    user_splits,
    write_dataset_yaml,
)
from downstream.datasets.splits import SPLIT_SEED
from downstream.errors import DataError, LabelError
from downstream.imageio import IMAGE_SUFFIXES, image_size, open_image
from sr import cli
from sr.cli import cli_entry
from sr.errors import UserError
from sr.ownership import add_overwrite_option

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
    raise DataError(
        f"{src}: not an FMB download: expected train/{images}, train/{labels}, test/... "
        f"or {images}/, {labels}/ with train.txt and test.txt"
    )


def read_palette(path: str | os.PathLike) -> dict[tuple[int, int, int], int]:
    from sr.config import read_yaml
    from sr.safeparse import read_json_file

    raw = read_yaml(path) if str(path).endswith((".yaml", ".yml")) else read_json_file(path, "palette")
    try:
        return {tuple(int(c) for c in str(k).split(",")): int(v) for k, v in raw.items()}
    except (ValueError, AttributeError):
        raise UserError(f"{path}: palette must map 'r,g,b' strings to ids") from None


def label_to_ids(
    path: Path, palette: dict[tuple[int, int, int], int] | None = None, num_classes: int = FMB_NUM_CLASSES
) -> np.ndarray:
    """A label image (ids as gray / palette indices / gray RGB, or colours via ``palette``) -> uint8 ids."""
    try:
        with open_image(path, LabelError) as img:
            mode = img.mode
            if mode in ("L", "P", "I", "I;16"):
                ids = np.asarray(img).astype(np.int64)
            elif mode in ("RGB", "RGBA"):
                rgb = np.asarray(img.convert("RGB")).astype(np.int64)
                if (
                    np.array_equal(rgb[..., 0], rgb[..., 1])
                    and np.array_equal(rgb[..., 0], rgb[..., 2])
                    and rgb[..., 0].max() < num_classes
                ):
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
                        raise DataError(
                            f"{path}: colours {[((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in bad]} "
                            "are not in the palette"
                        )
            else:
                raise DataError(f"{path}: unsupported label image mode {mode!r}")
    except OSError as exc:
        raise DataError(f"{path}: cannot read label image ({exc})") from None
    bad = np.unique(ids[(ids < 0) | (ids >= num_classes)])
    if bad.size:
        raise DataError(f"{path}: label ids {bad[:10].tolist()} outside 0..{num_classes - 1}")
    return ids.astype(np.uint8)


def prepare_fmb(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    images: str = "Infrared",
    labels: str = "Label",
    palette: dict[tuple[int, int, int], int] | None = None,
    link: bool = False,
    overwrite: bool = False,
) -> dict[str, int]:
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
            size = image_size(ir_path, DataError)
            if ids.shape != (size[1], size[0]):
                raise DataError(
                    f"{lab_path}: label is {ids.shape[1]}x{ids.shape[0]}, infrared frame "
                    f"{ir_path} is {size[0]}x{size[1]}"
                )
            converted.append((split, f"{split}_{stem}" if prefix else stem, ir_path, ids))
    lists: dict[str, list[str]] = {s: [] for s in SPLITS}
    with staged_output(out, (src,), overwrite=overwrite) as stage:
        (stage / "Infrared").mkdir()
        (stage / "Label").mkdir()
        for split, new_id, ir_path, ids in converted:
            place_file(ir_path, stage / "Infrared" / f"{new_id}{ir_path.suffix.lower()}", link)
            Image.fromarray(ids, mode="L").save(stage / "Label" / f"{new_id}.png", format="PNG")
            lists[split].append(f"{new_id}{ir_path.suffix.lower()}")
        for split in SPLITS:
            (stage / f"{split}.txt").write_text("\n".join(lists[split]) + "\n")
        (stage / DATASET_FILE).write_text(
            yaml.safe_dump(
                {
                    "description": f"FMB prepared from {src}",
                    "name": out.name,
                    "kind": "fmb",
                    "root": ROOT_HERE,
                    "split": "test",
                },
                sort_keys=False,
            )
        )
    return {s: len(v) for s, v in lists.items()}


BINARY_CLASSES = ("background", "target")
_IMAGE_DIRS = ("images", "image", "ir", "infrared", "thermal")
_MASK_DIRS = ("masks", "mask", "labels", "label", "annotations")


def _child(src: Path, names: tuple[str, ...]) -> Path | None:
    children = {p.name.lower(): p for p in src.iterdir() if p.is_dir()}
    return next((children[n] for n in names if n in children), None)


def mask_to_ids(path: Path, num_classes: int, palette: dict[tuple[int, int, int], int] | None = None) -> np.ndarray:
    """A mask image -> uint8 ids in ``0..num_classes-1`` (see the module docstring for the modes)."""
    raw = label_to_ids(path, palette, num_classes=256)
    values = np.unique(raw)
    if num_classes == 2 and set(values.tolist()) <= {0, 255}:
        raw = (raw == 255).astype(np.uint8)
        values = np.unique(raw)
    bad = values[values >= num_classes]
    if bad.size:
        hint = "" if num_classes > 2 else "; not a binary 0/255 (or 0/1) mask: pass --classes FILE naming every id"
        raise DataError(f"{path}: mask values {bad[:10].tolist()} outside 0..{num_classes - 1}{hint}")
    return raw


def _pair_masks(image_dir: Path, mask_dir: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(image id -> frame, image id -> its mask), searched recursively: the mask of the same relative path
    without suffix, any case (``downstream.datasets.discover``), else the one mask named ``<id>_<suffix>``
    (SIRST-v2's ``Misc_1_pixels0.png``)."""
    pairing = pair_files(image_dir, IMAGE_SUFFIXES, mask_dir, IMAGE_SUFFIXES)
    paired = dict(pairing.labels)
    rest = {frame_id(mask_dir, m).lower(): m for m in pairing.orphans}
    for sid in pairing.unlabelled:
        candidates = [m for key, m in rest.items() if key.startswith(f"{sid.lower()}_")]
        if len(candidates) == 1:
            paired[sid] = candidates[0]
    return pairing.frames, paired


def _convert_masks(
    frames: dict[str, Path], mask_files: dict[str, Path], names: list[str], palette
) -> tuple[dict[str, np.ndarray], Counter, Counter]:
    """(id -> class-id mask, pixels per class name, masks per PIL mode); a mask not of its image's size is an
    error."""
    converted, pixels, modes = {}, Counter(), Counter()
    for sid, path in tqdm(frames.items(), desc="prepare masks", unit="frame", file=sys.stderr, disable=None):
        ids = mask_to_ids(mask_files[sid], len(names), palette)
        size = image_size(path, DataError)
        with open_image(mask_files[sid], LabelError) as m:
            modes[m.mode] += 1
        if ids.shape != (size[1], size[0]):
            raise DataError(
                f"{mask_files[sid]}: mask is {ids.shape[1]}x{ids.shape[0]}, image {path} is {size[0]}x{size[1]}"
            )
        converted[sid] = ids
        pixels.update({names[int(v)]: int(c) for v, c in zip(*np.unique(ids, return_counts=True))})
    return converted, pixels, modes


def _splits(ids: list[str], split_dir: str | os.PathLike | None, seed: int) -> tuple[dict[str, list[str]], str]:
    """The splits (the user's split files, else the deterministic ones) and their rule."""
    if split_dir is not None:
        return user_splits(Path(split_dir), ids)
    all_splits, rule = seeded_splits(ids, seed)
    return {s: all_splits[s] for s in SPLIT_NAMES}, rule


def prepare_masks(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    classes: str | os.PathLike | None = None,
    palette: dict[tuple[int, int, int], int] | None = None,
    split_dir: str | os.PathLike | None = None,
    seed: int = SPLIT_SEED,
    link: bool = False,
    overwrite: bool = False,
) -> dict:
    """Image + mask folders -> the ``prepared`` layout with ``dataset.yaml``; returns a summary."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.is_dir():
        raise UserError(f"--src {src} is not a folder")
    image_dir = Path(images) if images else _child(src, _IMAGE_DIRS)
    mask_dir = Path(masks) if masks else _child(src, _MASK_DIRS)
    if image_dir is None or not image_dir.is_dir():
        raise UserError(f"no image folder in {src} (looked for {', '.join(_IMAGE_DIRS)}); pass --images")
    if mask_dir is None or not mask_dir.is_dir():
        raise UserError(f"no mask folder in {src} (looked for {', '.join(_MASK_DIRS)}); pass --masks")
    names = read_class_file(classes) if classes else list(BINARY_CLASSES)
    if len(names) < 2:
        raise UserError(f"--classes {classes}: a segmentation needs at least two classes (e.g. background, target)")
    frames, mask_files = _pair_masks(image_dir, mask_dir)
    if not frames:
        raise UserError(f"no images in {image_dir} (searched recursively)")
    missing = sorted(set(frames) - set(mask_files))
    if missing:
        raise DataError(
            f"{mask_dir}: no mask for {len(missing)} image(s), e.g. {missing[:5]} "
            f"(masks are paired with images by file name)"
        )
    converted, pixels, modes = _convert_masks(frames, mask_files, names, palette)
    splits, rule = _splits(list(frames), split_dir, seed)
    with staged_output(out, (src, images, masks, classes), overwrite=overwrite) as stage:
        (stage / "images").mkdir()
        (stage / "masks").mkdir()
        for sid, path in frames.items():
            place_file(path, stage / "images" / f"{sid}{path.suffix.lower()}", link)
            Image.fromarray(converted[sid], mode="L").save(stage / "masks" / f"{sid}.png", format="PNG")
        provenance = {
            "format": "masks",
            "src": str(src.absolute()),
            "masks": str(mask_dir.absolute()),
            "class_file": str(classes) if classes else None,
            "mask_modes": dict(modes),
            "frames": len(frames),
            "masks_written": len(converted),
            "pixels": dict(pixels),
            "split_rule": rule,
            "split_sizes": {k: len(v) for k, v in splits.items()},
        }
        write_dataset_yaml(
            stage,
            out,
            splits=splits,
            options={"seg_classes": names, "provenance": provenance},
            description=f"{out.name}: segmentation masks prepared from {src}",
        )
    return {
        "frames": len(frames),
        "classes": names,
        "pixels": dict(pixels),
        "splits": {k: len(v) for k, v in splits.items()},
        "rule": rule,
    }


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(
        prog="python -m downstream.segmentation.prepare",
        description="Prepare a segmentation data set (FMB, or any image + mask "
        "folders) in the layout the harness reads.",
    )
    parser.add_argument("format", choices=["fmb", "masks"])
    parser.add_argument("--src", required=True, help="the unpacked download")
    parser.add_argument("--out", required=True, help="the data-set folder to write")
    parser.add_argument("--images", help="image folder (fmb: folder name, default Infrared; masks: found under --src)")
    parser.add_argument("--masks", help="mask folder (masks: default found under --src)")
    parser.add_argument("--labels", default="Label", help="fmb: label folder name (default Label)")
    parser.add_argument(
        "--classes", help="masks: class names, one per line in id order (default: background, target for binary masks)"
    )
    parser.add_argument("--palette", help="YAML/JSON 'r,g,b': id map for colour label images")
    parser.add_argument("--splits", help="masks: folder with train.txt, val.txt, test.txt")
    parser.add_argument("--seed", type=int, default=SPLIT_SEED, help=f"masks: split seed (default {SPLIT_SEED})")
    parser.add_argument("--link", action="store_true", help="hard-link the frames instead of copying them")
    add_overwrite_option(parser)
    args = parser.parse_args(argv)
    palette = read_palette(args.palette) if args.palette else None
    if args.format == "fmb":
        counts = prepare_fmb(
            args.src,
            args.out,
            images=args.images or "Infrared",
            labels=args.labels,
            palette=palette,
            link=args.link,
            overwrite=args.overwrite,
        )
        print(f"FMB prepared in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    else:
        summary = prepare_masks(
            args.src,
            args.out,
            images=args.images,
            masks=args.masks,
            classes=args.classes,
            palette=palette,
            split_dir=args.splits,
            seed=args.seed,
            link=args.link,
            overwrite=args.overwrite,
        )
        print(
            f"prepared {args.out}: {summary['frames']} frames, classes {summary['classes']}, pixels "
            f"{summary['pixels']}, splits {summary['splits']} ({summary['rule']})"
        )
    print(f"use it: --datasets {Path(args.out) / DATASET_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
