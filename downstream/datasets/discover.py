"""Finding a source's frames and pairing each with its label file: one rule for every prepare command.

* Folders are searched recursively (``images/day/x.png``, ``images/night/y.png``); a frame's id is its path
  relative to the folder searched, without the suffix, ``/`` joined by ``_`` (``day_x``; flat frames keep
  their stem).
* A label is paired with a frame by that relative path without suffix, **case-insensitively** (``X.TXT``
  pairs with ``x.png``; ``labels/day/x.txt`` with ``images/day/x.png``).
* A frame without a label and a label without a frame are returned, never dropped in silence: the prepare
  commands count and report them (and ``--require-labels`` makes the first an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from downstream.errors import DataError

UNLABELLED_READ_AS = "(read as 'no objects')"


def _key(rel: Path) -> str:
    return rel.with_suffix("").as_posix().lower()


def files_by_key(folder: Path, suffixes: Iterable[str]) -> dict[str, Path]:
    """``{matching key: path}`` of the files under ``folder`` (recursively) whose suffix (any case) is one of
    ``suffixes``; the key is the relative path without suffix, lower-cased. Two files with one key (``x.png`` and
    ``X.jpg``) are an error naming both."""
    wanted = {s.lower() for s in suffixes}
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in wanted:
            continue
        key = _key(path.relative_to(folder))
        if key in found:
            raise DataError(
                f"{folder}: {found[key].name} and {path.name} are one frame (names differ only in case "
                f"or suffix); rename one"
            )
        found[key] = path
    return found


def frame_id(folder: Path, path: Path) -> str:
    """The id of a frame found under ``folder``: its relative path without suffix, ``/`` -> ``_``."""
    return "_".join(path.relative_to(folder).with_suffix("").parts)


@dataclass
class Pairing:
    """Frames (id -> image path), their labels (id -> label path) and what did not pair."""

    frames: dict[str, Path]
    labels: dict[str, Path]
    unlabelled: list[str] = field(default_factory=list)  # frame ids without a label file
    orphans: list[Path] = field(default_factory=list)  # label files without a frame

    def report(self, label_dir: Path) -> list[str]:
        """Notes for the prepare summary and the data set YAML."""
        notes = []
        if self.unlabelled:
            notes.append(
                f"{len(self.unlabelled)} image(s) have no label file in {label_dir} {UNLABELLED_READ_AS}, "
                f"e.g. {', '.join(self.unlabelled[:5])}"
            )
        if self.orphans:
            notes.append(
                f"{len(self.orphans)} label file(s) in {label_dir} have no image (left out), "
                f"e.g. {', '.join(str(p.relative_to(label_dir)) for p in self.orphans[:5])}"
            )
        return notes


def pair_files(
    image_dir: Path, image_suffixes: Iterable[str], label_dir: Path, label_suffixes: Iterable[str]
) -> Pairing:
    """Pair the frames under ``image_dir`` with the labels under ``label_dir`` (see the module docstring)."""
    images = files_by_key(image_dir, image_suffixes)
    labels = files_by_key(label_dir, label_suffixes) if label_dir.is_dir() else {}
    frames = {frame_id(image_dir, path): path for path in images.values()}
    ids = {key: frame_id(image_dir, path) for key, path in images.items()}
    return Pairing(
        frames=frames,
        labels={ids[key]: labels[key] for key in images if key in labels},
        unlabelled=sorted(ids[key] for key in images if key not in labels),
        orphans=sorted(path for key, path in labels.items() if key not in images),
    )
