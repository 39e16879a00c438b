"""``prepared``: a user's own labelled infrared data set, as ``prepare`` commands write it.

Layout under ``root`` (written by ``python -m downstream.detection.prepare {yolo,voc,coco}`` and
``python -m downstream.segmentation.prepare masks``)::

    images/<id>.<ext>        the source frames, copied unchanged (or hard-linked with --link)
    labels/<id>.txt          YOLO txt boxes, class ids in the order of ``classes``    (detection)
    masks/<id>.png           uint8 class ids in the order of ``seg_classes``, 255 = ignore (segmentation)
    splits/<split>.txt       one id per line: train, val, test (the source's split, else the deterministic one)
    dataset.yaml             this kind's options: root, split, classes / seg_classes, provenance

``dataset.yaml`` is an ordinary data-set YAML (``--datasets OUT/dataset.yaml``); trainers read the same file
with ``split=train``. ``provenance`` records the source format, folder, class mapping and counts; it is part of
the data set's identity (cache key), so a re-prepared data set with other labels is never mixed with old rows.

Writing: :func:`staged_output` builds the whole folder next to ``OUT`` and renames it into place only when
everything succeeded, so a failed prepare leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from downstream.datasets.base import register_kind, resolve_root
from downstream.datasets.folder import FolderDataset
from downstream.errors import DataError
from downstream.labels import check_class_name
from sr.errors import UserError
from sr.ownership import check_apart, owned_folder
from sr.safeparse import read_yaml_file

DATASET_FILE = "dataset.yaml"
#: the ``root`` every prepare writes: the dataset.yaml's own folder (``dataset_config`` resolves it there)
ROOT_HERE = "."
SPLIT_NAMES = ("train", "val", "test")


@register_kind("prepared")
class PreparedDataset(FolderDataset):
    def __init__(
        self,
        name: str,
        *,
        root: str,
        split: str = "test",
        classes: list[str] | None = None,
        seg_classes: list[str] | None = None,
        provenance: dict[str, Any] | None = None,
        **options: Any,
    ):
        base = resolve_root(root)
        self.split = split
        if split != "all":
            list_file = base / "splits" / f"{split}.txt"
            if not list_file.is_file():
                raise DataError(
                    f"data set {name!r}: split {split!r} has no list {list_file} "
                    f"(known: {', '.join(sorted(p.stem for p in (base / 'splits').glob('*.txt')))})"
                )
            options.setdefault("list_file", str(list_file))
        if not classes and not seg_classes:
            raise DataError(f"data set {name!r}: a prepared data set needs 'classes' (boxes) or 'seg_classes' (masks)")
        self.provenance = dict(provenance or {})
        super().__init__(
            name,
            root=str(base / "images"),
            labels_dir=str(base / "labels") if classes else None,
            classes=classes,
            masks_dir=str(base / "masks") if seg_classes else None,
            seg_classes=seg_classes,
            **options,
        )


def read_id_list(path: Path) -> list[str]:
    """Ids of a split list (one id or file name per line; blank lines ignored)."""
    return [Path(line.strip()).stem for line in Path(path).read_text().splitlines() if line.strip()]


def user_splits(split_dir: Path, ids: list[str]) -> tuple[dict[str, list[str]], str]:
    """Train / val / test from the user's ``train.txt``, ``val.txt``, ``test.txt`` in ``split_dir`` (ids sorted,
    each once), and the rule said in the summary; a missing file or an id with no frame is an error."""
    splits = {}
    for name in SPLIT_NAMES:
        f = Path(split_dir) / f"{name}.txt"
        if not f.is_file():
            raise UserError(f"--splits {split_dir}: {f.name} is missing (need train.txt, val.txt, test.txt)")
        splits[name] = sorted(set(read_id_list(f)))
    unknown = sorted(set().union(*splits.values()) - set(ids))
    if unknown:
        raise DataError(f"--splits {split_dir}: {len(unknown)} ids have no frame (e.g. {unknown[0]})")
    return splits, f"user split files from {split_dir}"


def seeded_splits(ids: list[str], seed: int) -> tuple[dict[str, list[str]], str]:
    """``downstream.datasets.splits.deterministic_splits`` (train / val / test, the M3FD subsets and ``all``), and
    the rule said in the summary."""
    from downstream.datasets.splits import deterministic_splits

    rule = f"downstream.datasets.splits.deterministic_splits(seed={seed}): sorted ids, permuted, 70/10/20 %"
    return deterministic_splits(ids, seed), rule


def place_file(src: Path, dst: Path, link: bool) -> None:
    """Copy ``src`` to ``dst`` (the default: the user's originals are never shared), or hard-link it."""
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another file system: a copy is the honest fallback
    shutil.copyfile(src, dst)


def staged_output(
    out: str | os.PathLike, sources: tuple = (), *, overwrite: bool = False
) -> contextlib.AbstractContextManager[Path]:
    """A folder beside ``out`` that becomes ``out`` when the block succeeds (``sr.ownership.owned_folder``): an
    existing ``out`` is replaced only when a previous prepare made it (its manifest, not a ``dataset.yaml``);
    ``out`` equal to, inside or containing one of ``sources`` (the data read from) is refused."""
    check_apart(out, sources)
    return owned_folder(out, "prepared data set", overwrite=overwrite)


def write_dataset_yaml(
    stage: Path, out: Path, *, splits: dict[str, list[str]], description: str, options: dict[str, Any]
) -> None:
    """``splits/*.txt`` and ``dataset.yaml`` (root = the YAML's own folder, so ``out`` can be moved) inside the
    staging folder."""
    (stage / "splits").mkdir(exist_ok=True)
    for split, ids in splits.items():
        (stage / "splits" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    cfg = {
        "description": description,
        "name": Path(out).name,
        "kind": "prepared",
        "root": ROOT_HERE,
        "split": "test",
        **options,
    }
    (stage / DATASET_FILE).write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))


def read_class_file(path: str | os.PathLike) -> list[str]:
    """Class names, one per line in id order (``classes.txt``, ``*.names``), or a YAML list / ``names:`` map."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class file {path} does not exist")
    if path.suffix.lower() in (".yaml", ".yml"):
        raw = read_yaml_file(path)
        raw = raw.get("names", raw) if isinstance(raw, dict) else raw
        if isinstance(raw, dict):  # ultralytics' data.yaml: names: {0: a, 1: b}
            raw = [raw[k] for k in sorted(raw, key=int)]
        if not isinstance(raw, list):
            raise UserError(f"{path}: expected a list of class names or a 'names:' mapping")
        names = [check_class_name(str(n).strip(), f"{path}: entry {i + 1}") for i, n in enumerate(raw)]
    else:
        lines = enumerate(path.read_text().split("\n"), start=1)  # split("\n"): a \r or \v inside a name stays in it
        names = [check_class_name(t.strip(), f"{path}:{i}") for i, t in lines if t.strip()]
    if not names:
        raise UserError(f"class file {path} lists no classes")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"class file {path} repeats {dupes}")
    return names


def read_class_map(path: str | os.PathLike, source: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """A ``--map`` YAML ``{source name: new name | null}`` -> (full mapping, resulting class list).

    Names not in the file keep their name; ``null`` drops a class (its boxes / pixels are left out; mask
    pixels become ignore); several source names mapped to one name merge. The resulting order follows the
    source order of each new name's first source class.
    """
    from sr.config import read_yaml

    raw = read_yaml(path)
    unknown = sorted(str(k) for k in raw if str(k) not in source)
    if unknown:
        raise UserError(f"--map {path}: {unknown} are not classes of the source ({', '.join(source)})")
    mapping = {name: (None if raw.get(name, name) is None else str(raw.get(name, name))) for name in source}
    result = list(dict.fromkeys(v for v in mapping.values() if v is not None))
    if not result:
        raise UserError(f"--map {path} drops every class")
    return mapping, result
