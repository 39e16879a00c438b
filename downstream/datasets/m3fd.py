"""``m3fd``: M3FD infrared frames with detection boxes (6 classes), as laid out by ``prepare``.

Layout under ``root``: ``ir/<id>.png`` frames; ``labels/<id>.txt`` YOLO boxes (or ``Annotation/<id>.xml``
VOC, the official download's format); optional ``meta/<split>.txt`` lists; optional LR folder.
Class order (ids 0..5): People, Car, Bus, Motorcycle, Lamp, Truck, as the M3FD README lists them.
``split`` is one of train / val / test / all / set5 / set15 / set20 (see downstream.datasets.splits); a Set5/15/20
drawn from a test split with fewer frames is smaller than its name says: a warning is logged and every row is
flagged ``subset_smaller``.
"""

from __future__ import annotations

from typing import Any

from downstream.datasets.base import register_kind
from downstream.datasets.folder import FolderDataset
from downstream.datasets.splits import SPLIT_SEED, SUBSETS, deterministic_splits
from downstream.errors import DataError

M3FD_CLASSES = ("People", "Car", "Bus", "Motorcycle", "Lamp", "Truck")


@register_kind("m3fd")
class M3FDDataset(FolderDataset):
    def __init__(
        self,
        name: str,
        *,
        root: str,
        images: str = "ir",
        labels: str | None = "labels",
        annotations: str | None = None,
        split: str = "test",
        split_seed: int = SPLIT_SEED,
        **options: Any,
    ):
        from downstream.datasets.base import resolve_root

        base = resolve_root(root)
        self.split, self.split_seed = split, split_seed
        self._meta = base / "meta"
        super().__init__(
            name,
            root=str(base / images),
            labels_dir=str(base / labels) if labels and not annotations else None,
            voc_dir=str(base / annotations) if annotations else None,
            classes=list(M3FD_CLASSES),
            **options,
        )
        if split in SUBSETS:
            self.asked = min(SUBSETS[split], self.asked or SUBSETS[split])

    def _scan(self):
        files = super()._scan()
        list_file = self._meta / f"{self.split}.txt"
        if self.list_file is not None:
            return files
        if list_file.is_file():
            wanted = [line.strip().rsplit(".", 1)[0] for line in list_file.read_text().splitlines() if line.strip()]
        else:
            splits = deterministic_splits(list(files), self.split_seed)
            if self.split not in splits:
                raise DataError(f"data set {self.name!r}: unknown split {self.split!r}; use one of {sorted(splits)}")
            wanted = splits[self.split]
        missing = [i for i in wanted if i not in files]
        if missing:
            raise DataError(f"{list_file}: {len(missing)} listed ids have no frame in {self.root} (e.g. {missing[0]})")
        return {i: files[i] for i in wanted}
