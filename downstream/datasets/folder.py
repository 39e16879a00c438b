"""``folder``: a directory of HR frames, optionally with paired LR frames, boxes and masks.

Options (YAML or ``load_dataset(..., key=value)``):
``root`` (HR folder), ``lr_dir`` + ``lr_template`` (e.g. ``"{id}x4.png"``; without it LR is made
by the degradation; a frame whose LR file is missing has no LR: methods that read LR get an error row
for it, the ``hr`` reference row still scores), ``list_file`` (a text file of ids or file names;
default: every image in ``root``),
``labels_dir`` (YOLO txt per id, paired case-insensitively: ``X.TXT`` is frame ``x``'s; a frame without one has no
objects, counted in a warning worded as the prepare commands' notes, and ``require_labels: true`` makes it an error)
or ``voc_dir`` (VOC XML per id) with ``classes``,
``masks_dir`` + ``mask_template`` with ``seg_classes`` and ``mask_values`` (raw value -> id map),
``voc_skip`` (VOC class names whose boxes are left out, e.g. HIT-UAV's ``[DontCare]``), ``high_bit_rule`` for 16-bit
frames (see downstream.imageio), ``channels``, ``limit`` (the first N frames; fewer than N flags the rows
``subset_smaller``), ``lr_only`` (``root`` holds real LR frames and there is no HR: no-reference metrics and
``lr_psnr`` only). Ad hoc: ``folder:/path/to/frames?limit=20&channels=1`` (options as a query, values read as
YAML), or a data-set YAML anywhere (``--datasets path/to/my_set.yaml``) with ``kind: folder``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from downstream.datasets.base import Dataset, file_fingerprint, log, register_kind, resolve_root
from downstream.datasets.discover import UNLABELLED_READ_AS, Pairing, files_by_key
from downstream.errors import DataError
from downstream.imageio import IMAGE_SUFFIXES, read_image
from downstream.labels import read_mask, read_voc_xml, read_yolo_txt
from downstream.sample import LABEL_BOXES, LABEL_MASK, Sample


@register_kind("folder")
class FolderDataset(Dataset):
    def __init__(
        self,
        name: str,
        *,
        root: str,
        lr_dir: str | None = None,
        lr_template: str = "{id}.png",
        list_file: str | None = None,
        labels_dir: str | None = None,
        voc_dir: str | None = None,
        classes: list[str] | None = None,
        voc_skip: list[str] | None = None,
        masks_dir: str | None = None,
        mask_template: str = "{id}.png",
        seg_classes: list[str] | None = None,
        mask_values: dict[int, int] | None = None,
        mask_palette: dict[str, int] | None = None,
        high_bit_rule: Any = "agc",
        limit: int | None = None,
        lr_only: bool = False,
        require_labels: bool = False,
        **common: Any,
    ):
        super().__init__(name, **common)
        self.lr_only = bool(lr_only)  # root holds real LR frames, no HR: no-reference metrics and lr_psnr only
        if self.lr_only and (lr_dir or labels_dir or voc_dir or masks_dir):
            raise DataError(f"data set {name!r}: lr_only takes LR frames in 'root' only (no lr_dir, labels or masks)")
        self.root = resolve_root(root)
        if not self.root.is_dir():
            what = "is not a readable folder" if os.path.lexists(self.root) else "does not exist"
            raise DataError(f"data set {name!r}: folder {self.root} {what}")
        self.lr_dir = resolve_root(lr_dir) if lr_dir else None
        self.lr_template = lr_template
        self.list_file = resolve_root(list_file) if list_file else None
        self.labels_dir = resolve_root(labels_dir) if labels_dir else None
        self.voc_dir = resolve_root(voc_dir) if voc_dir else None
        self.voc_skip = tuple(voc_skip or ())
        if (self.labels_dir or self.voc_dir) and not classes:
            raise DataError(f"data set {name!r}: labels need a 'classes' list")
        labels: dict[str, tuple[str, ...]] = {}
        if self.labels_dir or self.voc_dir:
            labels[LABEL_BOXES] = tuple(classes)
        self.masks_dir = resolve_root(masks_dir) if masks_dir else None
        self.mask_template = mask_template
        if self.masks_dir and not seg_classes:
            raise DataError(f"data set {name!r}: masks need a 'seg_classes' list")
        if self.masks_dir:
            labels[LABEL_MASK] = tuple(seg_classes)
        self.label_classes = labels
        self.mask_values = {int(k): int(v) for k, v in mask_values.items()} if mask_values else None
        self.mask_palette = (
            {tuple(int(c) for c in k.split(",")): int(v) for k, v in mask_palette.items()} if mask_palette else None
        )
        self.high_bit_rule = tuple(high_bit_rule) if isinstance(high_bit_rule, list) else high_bit_rule
        self.limit = limit
        self.asked = limit
        self._clashes: dict[str, list[str]] = {}  # ids that several files share (dup.png + dup.jpg): error rows
        self._files = self._scan()
        if self.limit:
            self._files = dict(list(self._files.items())[: self.limit])
        self._labels = self._pair_labels(bool(require_labels)) if self.labels_dir else {}

    def _scan(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for p in sorted(self.root.iterdir()):
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if p.stem in files:
                self._clashes.setdefault(p.stem, [files[p.stem].name]).append(p.name)
            files.setdefault(p.stem, p)
        if not files:
            inner = [d.name for d in sorted(self.root.iterdir()) if d.is_dir() and _holds_images(d)]
            hint = f"; frames are in its sub-folder(s) {', '.join(inner)}: give that folder" if inner else ""
            raise DataError(
                f"data set {self.name!r}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {self.root}{hint}"
            )
        if self.list_file is not None:
            if not self.list_file.is_file():
                raise DataError(f"data set {self.name!r}: list file {self.list_file} does not exist")
            wanted = [Path(line.strip()).stem for line in self.list_file.read_text().splitlines() if line.strip()]
            files = {i: files.get(i, self.root / f"{i}.png") for i in wanted}
        return files

    def _pair_labels(self, require: bool) -> dict[str, Path]:
        """id -> its YOLO label file (``downstream.datasets.discover``'s rule: by stem, any case); frames without
        one are counted in a warning (once per data set and count), or an error with ``require``; label files
        of no image in ``root`` (whatever the split list) are reported in the same warning."""
        if not self.labels_dir.is_dir():
            raise DataError(f"data set {self.name!r}: labels folder {self.labels_dir} does not exist")
        found = files_by_key(self.labels_dir, (".txt",))
        images = _image_keys(self.root)
        pairing = Pairing(
            frames=self._files,
            labels={i: found[i.lower()] for i in self._files if i.lower() in found},
            unlabelled=[i for i in self._files if i.lower() not in found],
            orphans=sorted(path for key, path in found.items() if key not in images),
        )
        notes = pairing.report(self.labels_dir)
        if require and pairing.unlabelled:
            raise DataError(f"data set {self.name!r}: require_labels: {notes[0]}".replace(f" {UNLABELLED_READ_AS}", ""))
        key = (self.name, str(self.labels_dir), len(pairing.unlabelled), len(pairing.orphans))
        if notes and key not in _WARNED:
            _WARNED.add(key)
            log.warning("data set %r: %s", self.name, "; ".join(notes))
        return pairing.labels

    def ids(self) -> list[str]:
        return list(self._files)

    def load(self, sample_id: str, labels: bool = True) -> Sample:
        if sample_id in self._clashes:
            raise DataError(
                f"{self.root}: the files {' and '.join(self._clashes[sample_id])} share the frame id "
                f"{sample_id!r}; rename or remove all but one"
            )
        hr_path = self._files[sample_id]
        if self.lr_only:
            lr = read_image(hr_path, self.channels, self.high_bit_rule)
            return self.make_sample(sample_id, None, lr, source=str(hr_path), fingerprint=file_fingerprint(hr_path))
        hr = read_image(hr_path, self.channels, self.high_bit_rule)
        lr_path = self.lr_dir / self.lr_template.format(id=sample_id) if self.lr_dir else None
        lr_missing = (
            f"{lr_path}: file not found (no paired LR file for frame {sample_id})"
            if lr_path is not None and not lr_path.exists()
            else ""
        )
        lr = read_image(lr_path, self.channels, self.high_bit_rule) if lr_path and not lr_missing else None
        if lr is not None and hr.shape[2] != lr.shape[2]:
            hr = np.repeat(hr, 3, axis=2) if hr.shape[2] == 1 else hr
            lr = np.repeat(lr, 3, axis=2) if lr.shape[2] == 1 else lr
        height, width = hr.shape[:2]
        boxes, label_path = None, None
        if labels and self.labels_dir is not None:
            label_path = self._labels.get(sample_id)  # none: no objects (counted and warned about when scanned)
            boxes = (
                read_yolo_txt(label_path, width, height, len(self.label_classes[LABEL_BOXES]))
                if label_path is not None
                else np.zeros((0, 5), np.float32)
            )
        elif labels and self.voc_dir is not None:
            label_path = self.voc_dir / f"{sample_id}.xml"
            if not label_path.exists():
                raise DataError(f"{label_path}: annotation file missing for image {hr_path}")
            boxes = read_voc_xml(
                label_path, {c: i for i, c in enumerate(self.label_classes[LABEL_BOXES])}, width, height, self.voc_skip
            )
        mask, mask_path = None, None
        if self.masks_dir is not None and labels:
            mask_path = self.masks_dir / self.mask_template.format(id=sample_id)
            mask = read_mask(
                mask_path, (height, width), len(self.label_classes[LABEL_MASK]), self.mask_values, self.mask_palette
            )
        if boxes is not None:
            crop_w, crop_h = width - width % self.scale, height - height % self.scale
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, crop_w)
            boxes[:, [2, 4]] = boxes[:, [2, 4]].clip(0, crop_h)
            boxes = boxes[(boxes[:, 3] > boxes[:, 1]) & (boxes[:, 4] > boxes[:, 2])]
        return self.make_sample(
            sample_id,
            hr,
            lr,
            boxes=boxes,
            mask=mask,
            source=str(hr_path),
            fingerprint=file_fingerprint(hr_path, lr_path, label_path, mask_path),
            lr_missing=lr_missing,
        )


#: (data set, labels folder, unlabelled, orphans) already warned about
_WARNED: set[tuple] = set()


def _image_keys(folder: Path) -> set[str]:
    """The lower-cased stems of the images in ``folder`` (not recursive, as ``root`` is read)."""
    return {p.stem.lower() for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}


def _holds_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
