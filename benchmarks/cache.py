"""The on-disk cache of a benchmark run: SR outputs and metric rows under content keys.

Layout under ``<out>/cache``::

    sr/<method key>/<data-set key>/<sample id>__<fingerprint>.png      SR output (8-bit PNG)
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
so concurrent runners on one directory cannot corrupt it. Task entries are gzip-compressed JSON (a
detector's per-image detections at confidence 0.001 shrink about 3.6x; every value is kept exactly).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import zlib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from sr.atomic import atomic_path, atomic_write_text, sweep_temporaries

#: bump when a change of this project alters cached values without changing an option, a file or a version
#: (2: references scored on the 8-bit output grid; 3: task entries hold {"rows", "state"} for the intervals)
CACHE_SCHEMA = 3
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

    @staticmethod
    def read_json(path: Path) -> Any | None:
        """The entry at ``path`` (gzip-compressed when it ends in .gz); None when it is absent or unreadable."""
        try:
            data = path.read_bytes()
            return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
        except (OSError, EOFError, ValueError, zlib.error):
            return None

    @staticmethod
    def write_json(path: Path, data: Any) -> None:
        text = json.dumps(data, sort_keys=True, allow_nan=True)
        if path.suffix != ".gz":
            atomic_write_text(path, text)
            return
        with atomic_path(path) as tmp:
            tmp.write_bytes(gzip.compress(text.encode(), mtime=0))


def finite_or_nan(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value
