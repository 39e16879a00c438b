"""The on-disk cache of a benchmark run: SR outputs and metric rows under content keys.

Layout under ``<out>/cache``::

    sr/<method key>/<data-set key>/<sample id>__<fingerprint>.png      SR output (8-bit PNG)
    sr/<method key>/<data-set key>/<sample id>__<fingerprint>.png.json its entry: the sha256 of the PNG's bytes
    quality/<method key>/<data-set key>/<metric key>/<sample id>__<fingerprint>.json
    task/<method key>/<data-set key>/<task key>__<items hash>.json.gz   task rows + per-image state of a split
    task/<method key>/<data-set key>/<task key>__<items hash>__<draws key>.replicates.json.gz
                                                                        the rows on the bootstrap's image lists

A key is a short hash of a JSON description (method name + options + weights sha256, data set
kind + options + degradation, metric or task settings + weights sha256) together with ``computed_by``:
the cache schema version, this project's version and the versions of the libraries that compute the
value (each method, metric and task names them in ``libraries``: torch for SR, pyiqa for the quality
metrics, ultralytics for detection, mmsegmentation/mmengine for segmentation). Changing any of them
recomputes what depends on it and nothing else (a sample's files enter by their fingerprint); a rerun
after a crash recomputes only what is missing. Every file is written atomically (complete or absent),
so concurrent runners on one directory cannot corrupt it. Each JSON entry carries the sha256 of its key (its path
below the cache root) and its content: a truncated, edited or moved entry is recomputed with a warning, never used
(what this does and does not protect against: docs/security.md). An SR PNG is one of these entries too: its JSON
entry beside it holds the sha256 of the PNG's bytes (``write_sr`` / ``read_sr``). Task entries are gzip-compressed
JSON (a detector's per-image detections at confidence 0.001 shrink about 3.6x; every value is kept exactly).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import zlib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from downstream.imageio import read_image, write_png
from sr.atomic import atomic_path, atomic_write_text, sweep_temporaries

ENTRY_FORMAT = "irsr-cache-entry-1"
#: the folders under the cache root that hold JSON entries (an entry's key starts at one of them)
ENTRY_ROOTS = ("quality", "task", "sr")
_log = logging.getLogger(__name__)

#: bump when a change of this project alters cached values without changing an option, a file or a version
#: (2: references scored on the 8-bit output grid; 3: task entries hold {"rows", "state"} for the intervals;
#: 4: JSON entries carry the digest of their key and content; 5: SR PNGs carry the digest of their bytes)
CACHE_SCHEMA = 5
PROJECT = "irsr-bench"


@cache
def library_version(distribution: str) -> str | None:
    """Installed version of a distribution (None when it is not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def computed_by(libraries) -> dict[str, Any]:
    """The code a cached value depends on: cache schema, this project's version, the given libraries' versions."""
    return {
        "cache_schema": CACHE_SCHEMA,
        PROJECT: library_version(PROJECT),
        **{lib: library_version(lib) for lib in sorted(set(libraries))},
    }


def value_key(identity: dict[str, Any], libraries) -> str:
    """Cache key of what ``identity`` computes with ``libraries`` (see the module doc)."""
    return key_of({"identity": identity, "code": computed_by(libraries)})


def key_of(description: Any) -> str:
    """Stable 16-hex-digit key of a JSON-serialisable description."""
    text = json.dumps(description, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def _entry(sample_id: str, fingerprint: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sample_id)
        return f"{safe}__{hashlib.sha1(fingerprint.encode()).hexdigest()[:12]}" if fingerprint else safe

    def sr_path(self, method_key: str, dataset_key: str, sample_id: str, fingerprint: str) -> Path:
        return self.root / "sr" / method_key / dataset_key / f"{self._entry(sample_id, fingerprint)}.png"

    def quality_path(
        self, method_key: str, dataset_key: str, metric_key: str, sample_id: str, fingerprint: str
    ) -> Path:
        return (
            self.root
            / "quality"
            / method_key
            / dataset_key
            / metric_key
            / f"{self._entry(sample_id, fingerprint)}.json"
        )

    def task_path(self, method_key: str, dataset_key: str, task_key: str, items_key: str) -> Path:
        return self.root / "task" / method_key / dataset_key / f"{task_key}__{items_key}.json.gz"

    def replicates_path(self, method_key: str, dataset_key: str, task_key: str, items_key: str, draws_key: str) -> Path:
        """The task entry's bootstrap replicates on the image lists ``draws_key`` names (a changed seed, image list
        or resample count is another file)."""
        name = f"{task_key}__{items_key}__{draws_key}.replicates.json.gz"
        return self.root / "task" / method_key / dataset_key / name

    def sweep_stale_temporaries(self, max_age_s: float = 3600.0) -> int:
        """Delete temporaries of writes a killed process never finished (see :func:`sr.atomic.sweep_temporaries`)."""
        return sweep_temporaries(self.root, max_age_s)

    @classmethod
    def write_sr(cls, path: Path, image: np.ndarray) -> None:
        """Write an SR output as an 8-bit PNG (``downstream.imageio.write_png``) at ``path`` atomically, then its entry
        (the sha256 of the PNG's bytes, under the PNG's key): a PNG without its entry is never used."""
        write_png(path, image)
        cls.write_json(sr_entry_path(path), {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()})

    @classmethod
    def read_sr(cls, path: Path, channels: int | str) -> np.ndarray | None:
        """The SR output cached at ``path`` (as ``downstream.imageio.read_image`` returns it); None when it is
        absent, or its entry is missing, truncated or does not match the PNG's bytes (then with a warning: the
        frame is super-resolved again, never read from a PNG that is not the one written)."""
        if not path.is_file():
            return None
        entry = cls.read_json(sr_entry_path(path))
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if data is None or expected != hashlib.sha256(data).hexdigest():
            _log.warning("cached SR output %s has no entry or does not match its digest: recomputing it", path)
            return None
        return read_image(path, channels=channels)

    @staticmethod
    def read_json(path: Path) -> Any | None:
        """The entry at ``path`` (gzip-compressed when it ends in .gz); None when it is absent, or unreadable,
        truncated or not matching its digest (then with a warning: the value is recomputed, never used)."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            entry = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
            content = entry["data"] if isinstance(entry, dict) and entry.get("format") == ENTRY_FORMAT else None
            ok = content is not None and entry.get("digest") == entry_digest(path, canonical(content))
        except (EOFError, ValueError, zlib.error, RecursionError, TypeError, KeyError):
            ok = False
        if not ok:
            _log.warning("cache entry %s is truncated or does not match its digest: recomputing it", path)
            return None
        return content

    @staticmethod
    def write_json(path: Path, data: Any) -> None:
        """Write ``data`` at ``path`` atomically, in an envelope with the digest of its key and content."""
        body = canonical(data)
        digest = entry_digest(path, body)
        text = f'{{"data":{body},"digest":"{digest}","format":"{ENTRY_FORMAT}"}}'
        if path.suffix != ".gz":
            atomic_write_text(path, text)
            return
        with atomic_path(path) as tmp:
            tmp.write_bytes(gzip.compress(text.encode(), mtime=0))


def sr_entry_path(png: Path) -> Path:
    """The JSON entry of the SR PNG at ``png`` (its digest)."""
    return png.with_name(f"{png.name}.json")


def entry_key(path: Path) -> str:
    """The key of a cache entry: its path below the cache root (``quality/<method>/<data set>/<metric>/<file>``),
    which names what was computed (see the module doc). A copied entry under another key fails its digest."""
    parts = path.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ENTRY_ROOTS:
            return "/".join(parts[i:])
    return path.name


def canonical(data: Any) -> str:
    """The one JSON text of ``data`` the digest covers (sorted keys, no spaces; tuples read back as lists)."""
    return json.dumps(data, sort_keys=True, allow_nan=True, separators=(",", ":"))


def entry_digest(path: Path, body: str) -> str:
    """sha256 of an entry's key and its content's canonical JSON text."""
    return hashlib.sha256(f"{entry_key(path)}\n{body}".encode()).hexdigest()


def finite_or_nan(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value
