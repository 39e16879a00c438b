"""``fmb``: FMB infrared frames with 15-id segmentation masks (SegMiF's FMB release).

Layout under ``root``: ``Infrared/<id>.png``, ``Label/<id>.png`` (class-id images, 0..14) and
``train.txt`` / ``test.txt`` lists of file names. Ids: 0 unlabeled, 1 road, 2 sidewalk, 3 building,
4 lamp, 5 sign, 6 vegetation, 7 sky, 8 person, 9 car, 10 truck, 11 bus, 12 motorcycle, 13 bicycle,
14 pole. By default id 0 (unlabeled) is mapped to the ignore value and no metric counts it
(``ignore_unlabeled: false`` keeps it as a class). Colour label images are read through
``mask_palette`` ("r,g,b": id).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from downstream.datasets.base import register_kind, resolve_root
from downstream.datasets.folder import FolderDataset
from downstream.sample import IGNORE_INDEX

FMB_CLASSES = (
    "unlabeled",
    "road",
    "sidewalk",
    "building",
    "lamp",
    "sign",
    "vegetation",
    "sky",
    "person",
    "car",
    "truck",
    "bus",
    "motorcycle",
    "bicycle",
    "pole",
)

# Cityscapes-like colours for the 15 FMB ids (0 unlabeled is black = not drawn).
FMB_PALETTE = np.array(
    [
        (0, 0, 0),
        (128, 64, 128),
        (244, 35, 232),
        (70, 70, 70),
        (250, 170, 30),
        (220, 220, 0),
        (107, 142, 35),
        (70, 130, 180),
        (220, 20, 60),
        (0, 0, 142),
        (0, 0, 70),
        (0, 60, 100),
        (0, 0, 230),
        (119, 11, 32),
        (153, 153, 153),
    ],
    dtype=np.uint8,
)


@register_kind("fmb")
class FMBDataset(FolderDataset):
    def __init__(
        self,
        name: str,
        *,
        root: str,
        split: str = "test",
        images: str = "Infrared",
        labels: str = "Label",
        ignore_unlabeled: bool = True,
        **options: Any,
    ):
        base = resolve_root(root)
        self.split = split
        self.ignore_unlabeled = ignore_unlabeled
        list_file = base / f"{split}.txt"
        values = {0: IGNORE_INDEX, **{i: i for i in range(1, len(FMB_CLASSES))}} if ignore_unlabeled else None
        options.setdefault("list_file", str(list_file) if list_file.is_file() else None)
        super().__init__(
            name,
            root=str(base / images),
            masks_dir=str(base / labels),
            seg_classes=list(FMB_CLASSES),
            mask_values=values,
            **options,
        )
