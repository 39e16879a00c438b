"""Prepare a labelled detection data set: ``python -m downstream.detection.prepare FORMAT --src SRC --out OUT``.

Formats, each with the class names of the source in the source's own order (never another data set's):

``yolo``  YOLO txt (``cls xc yc w h``, normalised) per image; the class file is required: ``--classes FILE``
          or one found next to the labels (``classes*.txt``, ``*.names``); ids beyond it are an error.
``voc``   Pascal VOC XML per image; classes are the ``<name>`` s in order of first appearance (files sorted),
          or the order of ``--classes FILE`` (which must then cover every name).
``coco``  COCO JSON (``--annotations`` a file or a folder of them); classes are the categories sorted by id,
          non-contiguous ids included; ``iscrowd`` boxes are left out (COCOeval ignores them too).
``m3fd``  the official M3FD download (VOC or YOLO), written in the layout ``configs/datasets/m3fd_*.yaml`` read
          (``ir/``, ``labels/``, ``meta/``). M3FD's six classes are checked, not assumed: a class file beside
          the labels that lists other names is an error that points to ``prepare yolo``.

``--map FILE`` (YAML ``{source name: new name | null}``) renames, merges (two names to one) or drops (``null``,
e.g. ``DontCare: null``) classes; the mapping is recorded in ``OUT/dataset.yaml``.

Images: ``--images DIR`` or a folder under ``--src`` named ir / infrared / thermal / images / JPEGImages (any case);
annotations: ``--annotations`` or a folder named labels* (YOLO) / annotation* / xml (VOC). Splits: the source's
own (``images/{train,val,test}/``, VOC ``ImageSets/Main/*.txt``, COCO files named *train* / *val* / *test*, or
``--splits DIR`` with ``train.txt`` / ``val.txt`` / ``test.txt``); a source with train and val but no test uses
its val split as test. Without a source split: ``downstream.datasets.splits.deterministic_splits`` (seeded
70 / 10 / 20 %). Frames are copied (``--link`` hard-links them instead); everything is built in a temporary
folder beside OUT and renamed into place at the end, so a failure leaves nothing behind.

Output: the ``prepared`` layout (``downstream.datasets.prepared``) with ``OUT/dataset.yaml``, usable as
``--datasets OUT/dataset.yaml`` and by ``python -m downstream.detection.train --dataset OUT/dataset.yaml``.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from downstream.datasets.discover import UNLABELLED_READ_AS, Pairing, pair_files
from downstream.datasets.m3fd import M3FD_CLASSES
from downstream.datasets.prepared import (
    DATASET_FILE,
    ROOT_HERE,
    SPLIT_NAMES,
    place_file,
    read_class_file,
    read_class_map,
    read_id_list,
    seeded_splits,
    staged_output,
    user_splits,
    write_dataset_yaml,
)
from downstream.datasets.splits import SPLIT_SEED, SUBSETS
from downstream.detection.data import yolo_lines
from downstream.errors import DataError, LabelError
from downstream.imageio import IMAGE_SUFFIXES, image_size, open_image
from downstream.labels import check_class_name, check_inside, check_relative, read_voc_xml, read_yolo_txt
from sr import cli
from sr.cli import cli_entry
from sr.errors import UserError
from sr.ownership import add_overwrite_option
from sr.safeparse import read_json_file

FORMATS = ("m3fd", "yolo", "voc", "coco")
_IMAGE_DIRS = ("ir", "infrared", "thermal", "images", "jpegimages")
_VOC_DIRS = ("annotation", "annotations", "xml", "voc")
_YOLO_DIRS = ("labels", "label", "yolo")
_CLASS_FILE_GLOBS = ("classes*.txt", "*.names")


@dataclass
class Frame:
    """One source image and its boxes (class ids index the source class list)."""

    id: str
    image: Path
    boxes: np.ndarray  # (N, 5) cls, x1, y1, x2, y2 in pixels
    split: str | None = None
    notes: list[str] = field(default_factory=list)
    labelled: bool = True  # False: no label file was found for this image (its boxes are empty)


def _find_dir(src: Path, names: tuple[str, ...]) -> Path | None:
    """A child folder of ``src`` named one of ``names`` (any case), or ``<name>_<anything>``."""
    children = sorted((p for p in src.iterdir() if p.is_dir()), key=lambda p: p.name)
    for name in names:
        for child in children:
            low = child.name.lower()
            if low == name or low.startswith(f"{name}_"):
                return child
    return None


def _image_size(path: Path) -> tuple[int, int]:
    return image_size(path, DataError)


def _split_folders(image_dir: Path) -> dict[str | None, Path]:
    """``{split: folder}``: the split sub-folders (train / val / test) when the folder has them and no frames of
    its own, else ``{None: image_dir}``."""
    subs = {p.name.lower(): p for p in image_dir.iterdir() if p.is_dir() and p.name.lower() in SPLIT_NAMES}
    own = any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in image_dir.iterdir())
    return subs if subs and not own else {None: image_dir}


def _pairings(image_dir: Path, ann_dir: Path, label_suffixes: tuple[str, ...]) -> dict[str | None, Pairing]:
    """Per split: the frames under ``image_dir`` (recursively) paired with their labels under ``ann_dir`` (its
    split sub-folder when it has one) by relative path, case-insensitively (``downstream.datasets.discover``)."""
    out = {}
    for split, folder in _split_folders(image_dir).items():
        labels = ann_dir / split if split and (ann_dir / split).is_dir() else ann_dir
        out[split] = pair_files(folder, IMAGE_SUFFIXES, labels, label_suffixes)
    if not any(p.frames for p in out.values()):
        raise DataError(f"no images found in {image_dir} (searched recursively for {', '.join(IMAGE_SUFFIXES)})")
    return out


def _pairing_notes(pairings: dict[str | None, Pairing], ann_dir: Path) -> list[str]:
    notes = []
    for split, pairing in pairings.items():
        notes += [f"{split}: {n}" if split else n for n in pairing.report(ann_dir / split if split else ann_dir)]
    return notes


def _counted(items, desc: str):
    """``items`` with a tqdm count on stderr (shown on a terminal, like the runner's; silent when redirected)."""
    items = list(items)
    return tqdm(items, desc=desc, unit="frame", file=sys.stderr, disable=None, leave=False)


def _image_dir(src: Path, images: Path | None) -> Path:
    image_dir = Path(images) if images else _find_dir(src, _IMAGE_DIRS)
    if image_dir is None or not image_dir.is_dir():
        raise UserError(f"no image folder in {src} (looked for {', '.join(_IMAGE_DIRS)}, any case); pass --images")
    return image_dir


def _class_file(src: Path, ann_dir: Path, classes: Path | None) -> Path | None:
    if classes:
        return Path(classes)
    found = []
    for folder in dict.fromkeys((ann_dir, ann_dir.parent, src)):
        for pattern in _CLASS_FILE_GLOBS:
            found += sorted(folder.glob(pattern))
    found = list(dict.fromkeys(found))
    if len(found) > 1:
        raise UserError(f"several class files found ({', '.join(map(str, found))}); name one with --classes")
    return found[0] if found else None


# ------------------------------------------------------------------------------------------------ sources


def collect_yolo(
    src: Path, images: Path | None, annotations: Path | None, classes: Path | None, *, required_classes: bool = True
) -> tuple[list[Frame], list[str], Path | None]:
    """Frames of a YOLO txt source and its class list (from the class file)."""
    image_dir = _image_dir(src, images)
    ann_dir = Path(annotations) if annotations else _find_dir(src, _YOLO_DIRS)
    if ann_dir is None or not ann_dir.is_dir():
        raise UserError(f"no YOLO label folder in {src} (looked for {', '.join(_YOLO_DIRS)}); pass --annotations")
    class_file = _class_file(src, ann_dir, classes)
    if class_file is None and required_classes:
        raise UserError(
            f"YOLO labels need their class file (one name per line, in id order): none found in "
            f"{ann_dir}, {ann_dir.parent} or {src} (classes*.txt, *.names); pass --classes FILE"
        )
    names = read_class_file(class_file) if class_file else list(M3FD_CLASSES)
    pairings = _pairings(image_dir, ann_dir, (".txt",))
    ignore = {class_file.resolve()} if class_file else set()
    for pairing in pairings.values():
        pairing.orphans = [p for p in pairing.orphans if p.resolve() not in ignore]
    notes = _pairing_notes(pairings, ann_dir)
    frames = []
    for split, pairing in pairings.items():
        for sid, path in _counted(pairing.frames.items(), "read yolo labels"):
            label = pairing.labels.get(sid)
            width, height = _image_size(path)
            boxes = read_yolo_txt(label, width, height, len(names)) if label else np.zeros((0, 5), np.float32)
            frames.append(Frame(sid, path, boxes, split, list(notes), labelled=label is not None))
    return frames, names, class_file


def _voc_names(files: list[Path]) -> list[str]:
    names: dict[str, None] = {}
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise LabelError(f"{path}: invalid XML ({exc})") from None
        for obj in root.iter("object"):
            names.setdefault(check_class_name((obj.findtext("name") or "").strip(), str(path)), None)
    return list(names)


def _voc_splits(src: Path) -> dict[str, str]:
    """id -> split from ``ImageSets/Main/{train,val,test}.txt`` anywhere up to two levels under ``src``."""
    for main in sorted(src.glob("ImageSets/Main")) + sorted(src.glob("*/ImageSets/Main")):
        found = {s: read_id_list(main / f"{s}.txt") for s in SPLIT_NAMES if (main / f"{s}.txt").is_file()}
        if found:
            return {sid: split for split, ids in found.items() for sid in ids}
    return {}


def collect_voc(
    src: Path, images: Path | None, annotations: Path | None, classes: Path | None
) -> tuple[list[Frame], list[str], Path | None]:
    """Frames of a VOC XML source; classes in order of first appearance, or the order of ``classes``."""
    image_dir = _image_dir(src, images)
    ann_dir = Path(annotations) if annotations else _find_dir(src, _VOC_DIRS)
    if ann_dir is None or not ann_dir.is_dir():
        raise UserError(f"no VOC annotation folder in {src} (looked for {', '.join(_VOC_DIRS)}); pass --annotations")
    xml_files = sorted(p for p in ann_dir.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")
    if not xml_files:
        raise UserError(f"no .xml files in {ann_dir} (searched recursively)")
    seen = _voc_names(xml_files)
    if classes:
        names = read_class_file(classes)
        missing = [n for n in seen if n not in names]
        if missing:
            raise LabelError(f"{ann_dir}: classes {missing} are not in --classes {classes} ({', '.join(names)})")
    else:
        names = seen
    source_split = _voc_splits(src)
    pairings = _pairings(image_dir, ann_dir, (".xml",))
    notes = _pairing_notes(pairings, ann_dir)
    frames = []
    for split, pairing in pairings.items():
        for sid, path in _counted(pairing.frames.items(), "read voc labels"):
            label = pairing.labels.get(sid)
            width, height = _image_size(path)
            boxes = (
                read_voc_xml(label, {n: i for i, n in enumerate(names)}, width, height)
                if label
                else np.zeros((0, 5), np.float32)
            )
            frames.append(Frame(sid, path, boxes, split or source_split.get(sid), list(notes), labelled=bool(label)))
    return frames, names, Path(classes) if classes else None


def _split_of_name(path: Path) -> str | None:
    for part in (path.stem.lower(), path.parent.name.lower()):
        for split in SPLIT_NAMES:
            if split in part:
                return split
    return None


def _coco_files(src: Path, annotations: Path | list[Path] | None) -> list[Path]:
    """The COCO JSON files: ``annotations`` (files, or folders of them and their subfolders), default ``src``."""
    anns = [Path(a) for a in annotations] if isinstance(annotations, list) else [Path(annotations or src)]
    files = []
    for ann in anns:
        found = [ann] if ann.is_file() else sorted(ann.glob("*.json")) + sorted(ann.glob("*/*.json"))
        if not found:
            raise UserError(f"no COCO .json file at {ann}; pass --annotations FILE")
        files += found
    return files


def _read_coco(files: list[Path]) -> tuple[list[tuple[Path, dict]], list[str], dict[int, int]]:
    """([(file, its JSON)], the class names = categories sorted by id, category id -> class index)."""
    categories: dict[int, str] = {}
    parsed = []
    for path in files:
        try:
            data = read_json_file(path, "COCO file")
            cats = {
                int(c["id"]): check_class_name(str(c["name"]), f"{path}: category {c['id']}")
                for c in data["categories"]
            }
            data["images"], data["annotations"]
        except (ValueError, KeyError, TypeError) as exc:
            raise LabelError(f"{path}: not a COCO detection file ({type(exc).__name__}: {exc})") from None
        for cid, name in cats.items():
            if categories.setdefault(cid, name) != name:
                raise LabelError(f"{path}: category id {cid} is {name!r} here and {categories[cid]!r} in another file")
        parsed.append((path, data))
    order = sorted(categories)
    names = [categories[c] for c in order]
    if len(set(names)) != len(names):
        raise LabelError(f"{files[0]}: category names repeat: {names}")
    return parsed, names, {cid: i for i, cid in enumerate(order)}


def _coco_boxes(path: Path, data: dict, index: dict[int, int]) -> tuple[dict, int]:
    """(image id -> [[class, x1, y1, x2, y2]], how many ``iscrowd`` annotations were left out) of one file."""
    per_image: dict = {img["id"]: [] for img in data["images"]}
    crowd = 0
    for a in data["annotations"]:
        if a.get("iscrowd", 0):
            crowd += 1
            continue
        if a.get("image_id") not in per_image or int(a.get("category_id", -1)) not in index:
            raise LabelError(
                f"{path}: annotation {a.get('id')} refers to an unknown image or category "
                f"({a.get('image_id')!r}, {a.get('category_id')!r})"
            )
        try:
            x, y, w, h = (float(v) for v in a["bbox"])
        except (KeyError, TypeError, ValueError):
            raise LabelError(f"{path}: annotation {a.get('id')} has no valid bbox [x, y, w, h]") from None
        if w <= 0 or h <= 0:
            raise LabelError(f"{path}: annotation {a.get('id')} has a non-positive size (w={w}, h={h})")
        per_image[a["image_id"]].append([index[int(a["category_id"])], x, y, x + w, y + h])
    return per_image, crowd


def _clipped_boxes(rows: list, width: int, height: int) -> np.ndarray:
    """[[class, x1, y1, x2, y2]] clipped to the image; boxes left empty by the clipping are dropped."""
    boxes = np.asarray(rows, np.float32).reshape(-1, 5)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, width)
    boxes[:, [2, 4]] = boxes[:, [2, 4]].clip(0, height)
    return boxes[(boxes[:, 3] > boxes[:, 1]) & (boxes[:, 4] > boxes[:, 2])]


def collect_coco(
    src: Path,
    images: Path | None,
    annotations: Path | list[Path] | None,
    classes: Path | None,
    *,
    skip_missing: bool = False,
) -> tuple[list[Frame], list[str], Path | None]:
    """Frames of COCO JSON file(s); classes = categories sorted by id (ids need not be contiguous).

    ``annotations``: JSON files or folders of them (default: ``src``); a file's images are looked up under
    ``images``, else beside the file, under ``src`` and their ``images/`` folders. An image that is not found is
    an error, or with ``skip_missing`` left out and counted (a note on every frame, in the summary and the YAML)."""
    if classes:
        raise UserError(
            "--classes does not apply to COCO: the class names are the JSON's categories "
            "(use --map to rename, merge or drop)"
        )
    parsed, names, index = _read_coco(_coco_files(src, annotations))
    splits = {path: _split_of_name(path) for path, _ in parsed} if len(parsed) > 1 else {parsed[0][0]: None}
    frames = []
    skipped: dict[Path, list[str]] = {}
    for path, data in parsed:
        per_image, crowd = _coco_boxes(path, data, index)
        roots = [Path(images)] if images else [path.parent, src, path.parent / "images", src / "images"]
        for img in data["images"]:
            rel = check_relative(str(img["file_name"]), f"{path}: image {img.get('id')!r}")
            found = next((r / c for r in roots for c in (rel, Path(rel.name)) if (r / c).is_file()), None)
            if found is None and skip_missing:
                skipped.setdefault(path, []).append(str(rel))
                continue
            if found is None:
                raise DataError(
                    f"{path}: image {str(rel)!r} not found under {', '.join(map(str, roots))}; pass --images DIR"
                )
            frame = Frame(found.stem, found, _clipped_boxes(per_image[img["id"]], *_image_size(found)), splits[path])
            if crowd:
                frame.notes.append(f"{path.name}: {crowd} iscrowd annotations left out")
            frames.append(frame)
    notes = [
        f"{path.name}: {len(rels)} image(s) not found, skipped (--skip-missing), e.g. {', '.join(rels[:3])}"
        for path, rels in skipped.items()
    ]
    for frame in frames:
        frame.notes += notes
    return frames, names, None


def _listed(paths) -> list:
    return list(paths) if isinstance(paths, list) else [paths]


COLLECTORS = {"yolo": collect_yolo, "voc": collect_voc, "coco": collect_coco}


# ------------------------------------------------------------------------------------------------ splits


def _split_lists(frames: list[Frame], split_dir: Path | None, seed: int) -> tuple[dict[str, list[str]], str]:
    ids = [f.id for f in frames]
    if split_dir is not None:
        return user_splits(split_dir, ids)
    own = {f.split for f in frames}
    if own - {None} and None not in own and ({"test", "val"} & own):
        splits = {name: sorted(f.id for f in frames if f.split == name) for name in SPLIT_NAMES}
        rule = "the source's own split"
        if not splits["test"]:
            splits["test"], splits["val"] = splits["val"], []
            rule += " (it has no test split: its val split is the test split, val is empty)"
        return splits, rule
    splits, rule = seeded_splits(ids, seed)
    return {name: splits[name] for name in SPLIT_NAMES}, rule


def _unique_ids(frames: list[Frame]) -> None:
    """Prefix ids with their split when two splits reuse a file name."""
    counts = Counter(f.id for f in frames)
    for f in frames:
        if counts[f.id] > 1:
            if f.split is None:
                raise DataError(f"two images share the id {f.id!r} (e.g. {f.image}); ids must be unique")
            f.id = f"{f.split}_{f.id}"


# ------------------------------------------------------------------------------------------------ prepare


def _collect(
    fmt: str, src: Path, images: Path | None, annotations, classes: Path | None, skip_missing: bool
) -> tuple[list[Frame], list[str], Path | None]:
    """The source's frames, class names and class file, read by the format's collector (at least one frame)."""
    if not src.is_dir():
        raise UserError(f"--src {src} is not a folder")
    if skip_missing and fmt != "coco":
        raise UserError(f"--skip-missing applies to coco (images a JSON file names), not to {fmt}")
    extra = {"skip_missing": skip_missing} if fmt == "coco" else {}
    frames, source_classes, class_file = COLLECTORS[fmt](src, images, annotations, classes, **extra)
    if not frames:
        raise UserError(f"no images found in {src}")
    return frames, source_classes, class_file


def prepare_detection(
    fmt: str,
    src: Path,
    out: Path,
    *,
    images: Path | None = None,
    annotations: Path | None = None,
    classes: Path | None = None,
    class_map: Path | None = None,
    split_dir: Path | None = None,
    seed: int = SPLIT_SEED,
    link: bool = False,
    overwrite: bool = False,
    require_labels: bool = False,
    skip_missing: bool = False,
) -> dict:
    """Prepare a ``yolo`` / ``voc`` / ``coco`` source into the ``prepared`` layout; returns a summary.

    Images without a label file are counted per split (summary ``unlabelled``, the YAML's provenance and notes);
    ``require_labels`` makes them an error. ``skip_missing`` (coco) leaves out images the JSON names but the
    folder lacks, counted in the notes."""
    src = Path(src)
    frames, source_classes, class_file = _collect(fmt, src, images, annotations, classes, skip_missing)
    unlabelled_ids = sorted(f.id for f in frames if not f.labelled)
    if require_labels and unlabelled_ids:
        where = sorted({n for f in frames for n in f.notes if "no label file" in n})
        raise DataError(f"--require-labels: {'; '.join(where)}".replace(f" {UNLABELLED_READ_AS}", ""))
    mapping, names = (
        read_class_map(class_map, source_classes)
        if class_map
        else ({n: n for n in source_classes}, list(source_classes))
    )
    _unique_ids(frames)
    splits, rule = _split_lists(frames, split_dir, seed)
    missing = set(unlabelled_ids)
    unlabelled = {name: sum(1 for i in ids if i in missing) for name, ids in splits.items()}
    source_counts = Counter(source_classes[int(c)] for f in frames for c in f.boxes[:, 0])
    out = Path(out)
    anns = [a for a in _listed(annotations) if a is not None]
    with staged_output(out, (src, images, *anns, classes, class_map), overwrite=overwrite) as stage:
        inside = (src, images, *(a if a.is_dir() else a.parent for a in map(Path, anns)))
        lookup = np.array([names.index(mapping[n]) if mapping[n] is not None else -1 for n in source_classes])
        counts = _write_frames(stage, frames, fmt, inside, lookup, names, link)
        provenance = {
            "format": fmt,
            "src": str(src.absolute()),
            "class_file": str(class_file) if class_file else None,
            "source_classes": list(source_classes),
            "map": {k: v for k, v in mapping.items() if k != v},
            "map_file": str(class_map) if class_map else None,
            "split_rule": rule,
            "frames": len(frames),
            "source_boxes": dict(source_counts),
            "boxes": dict(counts),
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "unlabelled_images": unlabelled,
            "notes": sorted({n for f in frames for n in f.notes}),
        }
        write_dataset_yaml(
            stage,
            out,
            splits=splits,
            options={"classes": names, "provenance": provenance},
            description=f"{out.name}: {fmt} detection data prepared from {src}",
        )
    return {
        "frames": len(frames),
        "boxes": sum(counts.values()),
        "per_class": dict(counts),
        "classes": names,
        "splits": {k: len(v) for k, v in splits.items()},
        "rule": rule,
        "unlabelled": unlabelled,
        "notes": provenance["notes"],
    }


def _write_frames(
    stage: Path, frames: list[Frame], fmt: str, inside: tuple, lookup: np.ndarray, names: list[str], link: bool
) -> Counter:
    """Every frame's image and YOLO label file in ``stage`` (classes through ``lookup``: source class -> index
    in ``names``, -1 dropped); returns the boxes written per class. A frame outside the ``inside`` folders is an
    error."""
    counts: Counter = Counter()
    (stage / "images").mkdir()
    (stage / "labels").mkdir()
    for f in tqdm(frames, desc=f"prepare {fmt}", unit="frame", file=sys.stderr, disable=None):
        check_inside(f.image, inside, str(f.image))
        boxes = f.boxes.copy()
        if len(boxes):
            boxes[:, 0] = lookup[boxes[:, 0].astype(int)]
            boxes = boxes[boxes[:, 0] >= 0]
        counts.update(names[int(c)] for c in boxes[:, 0])
        place_file(f.image, stage / "images" / f"{f.id}{f.image.suffix.lower()}", link)
        width, height = _image_size(f.image)
        (stage / "labels" / f"{f.id}.txt").write_text(yolo_lines(boxes, width, height))
    return counts


def _place_png(src: Path, dst: Path, link: bool) -> None:
    if src.suffix.lower() == ".png":
        place_file(src, dst, link)
    else:
        with open_image(src) as img:  # the pixel cap and one error naming the file, as every image read
            img.save(dst, format="PNG")


def _m3fd_frames(
    src: Path, images: Path | None, ann_dir: Path, classes: Path | None, require_labels: bool
) -> tuple[list[Frame], str]:
    """M3FD's frames from its VOC XML or YOLO txt labels in ``ann_dir``, and the format's name."""
    if any(p.suffix.lower() == ".xml" for p in ann_dir.iterdir()):
        pairing = pair_files(_image_dir(src, images), IMAGE_SUFFIXES, ann_dir, (".xml",))
        if pairing.unlabelled:
            raise DataError(f"{ann_dir}: {pairing.report(ann_dir)[0]}; M3FD labels every frame")
        class_ids = {c: i for i, c in enumerate(M3FD_CLASSES)}
        frames = []
        for sid, path in pairing.frames.items():
            width, height = _image_size(path)
            frames.append(Frame(sid, path, read_voc_xml(pairing.labels[sid], class_ids, width, height)))
        return frames, "VOC XML"
    frames, names, class_file = collect_yolo(src, images, ann_dir, classes, required_classes=False)
    if class_file is not None and list(names) != list(M3FD_CLASSES):
        raise UserError(
            f"{class_file} lists {names}, not M3FD's classes {list(M3FD_CLASSES)}: this is not "
            f"M3FD; prepare it with its own classes: python -m downstream.detection.prepare yolo "
            f"--src {src} --out OUT"
        )
    unlabelled = [f.id for f in frames if not f.labelled]
    if unlabelled and require_labels:
        raise DataError(f"--require-labels: {frames[0].notes[0]}")
    return frames, "YOLO txt"


def _m3fd_splits(frames: list[Frame], split_dir: Path | None, seed: int) -> tuple[dict[str, list[str]], str]:
    """M3FD's splits and subsets (set5/15/20) with their rule: the user's split files (subsets drawn from
    test), else the deterministic splits."""
    if split_dir is not None:
        splits, rule = user_splits(split_dir, [f.id for f in frames])
        test = splits["test"]
        order = np.random.default_rng(seed).permutation(len(test))
        for subset, n in SUBSETS.items():
            splits[subset] = sorted(test[i] for i in order[:n])
        return splits, rule + f"; set5/15/20 drawn from test with seed {seed}"
    return seeded_splits(sorted(f.id for f in frames), seed)


def prepare_m3fd(
    src: Path,
    out: Path,
    *,
    images: Path | None = None,
    annotations: Path | None = None,
    classes: Path | None = None,
    split_dir: Path | None = None,
    seed: int = SPLIT_SEED,
    link: bool = False,
    overwrite: bool = False,
    require_labels: bool = False,
) -> dict:
    """The official M3FD download -> ``ir/``, ``labels/``, ``meta/`` (what ``configs/datasets/m3fd_*.yaml`` read)."""
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"--src {src} is not a folder")
    ann_dir = Path(annotations) if annotations else (_find_dir(src, _VOC_DIRS) or _find_dir(src, _YOLO_DIRS))
    if ann_dir is None or not ann_dir.is_dir():
        raise UserError(
            f"no annotation folder in {src} (VOC: {', '.join(_VOC_DIRS)}; YOLO txt: "
            f"{', '.join(_YOLO_DIRS)}); pass --annotations"
        )
    frames, fmt = _m3fd_frames(src, images, ann_dir, classes, require_labels)
    if not frames:
        raise UserError(f"no images in {src}")
    ids = sorted(f.id for f in frames)
    splits, rule = _m3fd_splits(frames, split_dir, seed)
    counts = Counter(M3FD_CLASSES[int(c)] for f in frames for c in f.boxes[:, 0])
    out = Path(out)
    with staged_output(out, (src, images, annotations, classes), overwrite=overwrite) as stage:
        for sub in ("ir", "labels", "meta"):
            (stage / sub).mkdir()
        for f in frames:
            width, height = _image_size(f.image)
            _place_png(f.image, stage / "ir" / f"{f.id}.png", link)
            (stage / "labels" / f"{f.id}.txt").write_text(yolo_lines(f.boxes, width, height))
        for name, members in splits.items():
            if name != "all":
                (stage / "meta" / f"{name}.txt").write_text("".join(f"{i}\n" for i in members))
        summary = {
            "frames": len(ids),
            "boxes": sum(counts.values()),
            "per_class": dict(counts),
            "splits": {k: len(v) for k, v in splits.items() if k != "all"},
            "rule": rule,
            "classes": list(M3FD_CLASSES),
        }
        (stage / "meta" / "PREPARED.txt").write_text(
            f"M3FD prepared by python -m downstream.detection.prepare m3fd\nsource images: {frames[0].image.parent}\n"
            f"source labels: {ann_dir} ({fmt})\nclasses: {', '.join(M3FD_CLASSES)}\n"
            f"frames: {len(ids)}, boxes: {summary['boxes']}, per class: {dict(counts)}\nsplits: {summary['splits']}\n"
            f"split rule: {rule}\n"
        )
        import yaml

        (stage / DATASET_FILE).write_text(
            yaml.safe_dump(
                {
                    "description": f"M3FD prepared from {src}",
                    "name": out.name,
                    "kind": "m3fd",
                    "root": ROOT_HERE,
                    "split": "test",
                },
                sort_keys=False,
            )
        )
    return summary


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m downstream.detection.prepare",
        description="Turn a labelled detection data set into the layout the harness reads, with its own class names.",
    )
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("--src", required=True, help="the unpacked data set")
    parser.add_argument("--out", help="output folder (m3fd default: $IRSR_DATA_DIR/m3fd; required otherwise)")
    parser.add_argument("--images", help="image folder (default: found under --src)")
    parser.add_argument(
        "--annotations",
        action="append",
        help="YOLO txt / VOC XML folder, or COCO JSON file or folder (COCO: repeat it for several "
        "files, e.g. a train and a val file)",
    )
    parser.add_argument(
        "--classes",
        help="class file: one name per line in id order (YOLO: required unless "
        "found next to the labels; VOC: fixes the order)",
    )
    parser.add_argument("--map", help="YAML {source class: new name | null} to rename, merge or drop classes")
    parser.add_argument(
        "--splits",
        help="folder with train.txt, val.txt, test.txt (default: the source's split, else the deterministic one)",
    )
    parser.add_argument("--seed", type=int, default=SPLIT_SEED, help=f"split seed (default {SPLIT_SEED})")
    parser.add_argument("--link", action="store_true", help="hard-link the frames instead of copying them")
    add_overwrite_option(parser)
    parser.add_argument(
        "--require-labels",
        action="store_true",
        help="an image without a label file is an error (default: read as 'no objects', counted and reported)",
    )
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="coco: leave out images the JSON names but the folder lacks, and count them (default: an error)",
    )
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    paths = {k: Path(v) if v else None for k, v in vars(opts).items() if k in ("images", "classes", "map", "splits")}
    annotations = [Path(a) for a in opts.annotations or ()]
    if len(annotations) > 1 and opts.format != "coco":
        raise UserError(f"--annotations is given {len(annotations)} times; {opts.format} takes one folder")
    paths["annotations"] = (annotations or None) if opts.format == "coco" else (annotations[0] if annotations else None)
    if opts.format == "m3fd":
        from downstream.datasets.base import resolve_root

        if paths["map"] or opts.skip_missing:
            raise UserError(
                f"{'--map' if paths['map'] else '--skip-missing'} does not apply to m3fd; use prepare yolo/voc/coco"
            )
        out = Path(opts.out) if opts.out else resolve_root("m3fd")
        summary = prepare_m3fd(
            Path(opts.src),
            out,
            images=paths["images"],
            annotations=paths["annotations"],
            classes=paths["classes"],
            split_dir=paths["splits"],
            seed=opts.seed,
            link=opts.link,
            overwrite=opts.overwrite,
            require_labels=opts.require_labels,
        )
    else:
        if not opts.out:
            raise UserError(f"prepare {opts.format} needs --out (the folder to write)")
        out = Path(opts.out)
        summary = prepare_detection(
            opts.format,
            Path(opts.src),
            out,
            images=paths["images"],
            annotations=paths["annotations"],
            classes=paths["classes"],
            class_map=paths["map"],
            split_dir=paths["splits"],
            seed=opts.seed,
            link=opts.link,
            overwrite=opts.overwrite,
            require_labels=opts.require_labels,
            skip_missing=opts.skip_missing,
        )
    print(
        f"prepared {out}: {summary['frames']} frames, {summary['boxes']} boxes {summary['per_class']}, "
        f"classes {summary['classes']}, splits {summary['splits']} ({summary['rule']})"
    )
    if any(summary.get("unlabelled", {}).values()):
        print(f"images without a label file (read as 'no objects'), per split: {summary['unlabelled']}")
    for note in summary.get("notes", ()):
        print(f"note: {note}")
    print(f"use it: --datasets {out / 'dataset.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
