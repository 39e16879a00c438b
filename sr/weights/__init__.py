"""The weights registry: every pretrained file the project can use, and where it lives on disk.

Entries come from ``configs/weights.yaml`` (name -> file, url, sha256, size, licence, notes). Files
are resolved from one weights directory: ``--weights-dir`` / the ``weights_dir`` option, else the
``IRSR_WEIGHTS_DIR`` environment variable, else ``~/.cache/irsr/weights``. Every "registry name or
file path" option (methods, trainers, detection and segmentation tasks) goes through :func:`resolve_weights`.
Nothing is downloaded at import or run time; ``python -m sr.weights fetch NAME`` downloads on request.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sr.config import CONFIG_DIR, PROJECT_ROOT, read_yaml
from sr.errors import ConfigError, MissingWeightsError, UnknownNameError, UserError, check_keys
from sr.vocab import ENV_WEIGHTS_DIR, OPT_WEIGHTS_DIR

DEFAULT_WEIGHTS_DIR = Path.home() / ".cache" / "irsr" / "weights"
BUNDLED_PREFIX = "demo/"  # entries whose file starts with this are shipped in the repository
BUNDLED_DIR = PROJECT_ROOT / "sr" / "weights" / "demo"
_ENTRY_KEYS = {"file", "url", "sha256", "size", "licence", "notes", "used_by", "convert_from", "made_by", "checked"}


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    file: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    licence: str | None = None
    notes: str | None = None
    used_by: tuple[str, ...] = ()
    convert_from: str | None = None  # made from that entry's file by ``python -m sr.weights convert``
    made_by: str | None = None  # the command that makes the file (files this project trains or converts)
    checked: str | None = None  # when and against what the url was checked (the repository's README, ...)

    @property
    def source(self) -> str:
        """Where the file comes from: its URL, or (committed demo files) its path in the repository, or the
        command that makes it; "none known" when the registry records neither."""
        made = f"made by `{self.made_by}`" if self.made_by else ""
        if self.file.startswith(BUNDLED_PREFIX):
            where = f"committed as {(BUNDLED_DIR / self.file[len(BUNDLED_PREFIX) :]).relative_to(PROJECT_ROOT)}"
            return f"{where}, {made}" if made else where
        return self.url or made or "none known"


def weights_dir(override: str | os.PathLike | None = None) -> Path:
    """The directory weights are read from (see the module docstring for the order)."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(env).expanduser() if env else DEFAULT_WEIGHTS_DIR


@lru_cache(maxsize=1)
def registry() -> dict[str, WeightsEntry]:
    path = CONFIG_DIR / "weights.yaml"
    entries = {}
    for name, spec in read_yaml(path).items():
        if not isinstance(spec, dict) or "file" not in spec:
            raise ConfigError(f"{path}: entry {name!r} needs at least a 'file' key")
        check_keys(f"{path}: {name}", spec, _ENTRY_KEYS)
        spec = dict(spec)
        spec["used_by"] = tuple(spec.get("used_by", ()))
        entries[name] = WeightsEntry(name=name, **spec)
    return entries


def entry(name: str) -> WeightsEntry:
    reg = registry()
    if name not in reg:
        raise UnknownNameError("weights", name, reg)
    return reg[name]


def path_of(name: str, weights_dir_override: str | os.PathLike | None = None) -> Path:
    """Where the file of registry entry ``name`` is expected (it may not exist).

    Files named ``demo/...`` are the small demo models the project trains itself and commits under
    ``sr/weights/demo/``; every other file lives in the weights directory.
    """
    file = entry(name).file
    if file.startswith(BUNDLED_PREFIX):
        return BUNDLED_DIR / file[len(BUNDLED_PREFIX) :]
    return weights_dir(weights_dir_override) / file


def resolve(name: str, weights_dir_override: str | os.PathLike | None = None) -> Path:
    """The path of an existing weights file, or a MissingWeightsError naming file, URL and directory."""
    path = path_of(name, weights_dir_override)
    if not path.is_file():
        ent = entry(name)
        how = None
        if ent.convert_from:
            how = (
                f" Make it from {entry(ent.convert_from).file} ({entry(ent.convert_from).url or 'no public source'})"
                f" with: python -m sr.weights convert {ent.convert_from}"
            )
        raise MissingWeightsError(name, path, ent.url, how=how)
    return path


def resolve_weights(
    name_or_path: str | os.PathLike, weights_dir_override: str | os.PathLike | None = None, *, what: str = "weights"
) -> Path:
    """An existing weights file for a registry name or a path; the one search order of the whole project.

    1. ``name_or_path`` as a path (absolute, or relative to the working directory) when that file exists;
    2. a name in ``configs/weights.yaml``: its file (:func:`resolve`: in the weights directory, or committed
       for ``demo/`` entries), else a MissingWeightsError naming the file and where to get it;
    3. a relative path: in the weights directory (``weights_dir_override``, ``$IRSR_WEIGHTS_DIR``, the
       default), then in the project root (configs name committed demo weights ``sr/weights/demo/...``).
    Anything else is one UserError naming ``what``, the file and every place searched.
    """
    spec = str(name_or_path)
    path = Path(spec).expanduser()
    if path.is_file():
        return path.absolute()
    if spec in registry():
        return resolve(spec, weights_dir_override)
    places = (
        [path]
        if path.is_absolute()
        else list(dict.fromkeys([Path.cwd() / path, weights_dir(weights_dir_override) / path, PROJECT_ROOT / path]))
    )
    for candidate in places[1:]:
        if candidate.is_file():
            return candidate
    raise UserError(
        f"{what} {spec!r}: no such file and not a name in configs/weights.yaml (searched "
        f"{', '.join(str(p) for p in places)}). Put the file in one of them (the weights directory is "
        f"{OPT_WEIGHTS_DIR} / ${ENV_WEIGHTS_DIR}) or name an entry that `python -m sr.weights list` shows."
    )


def random_where_missing(random_weights: bool, resolve: Callable[[], object] | None) -> bool:
    """Whether a component builds random weights: ``--random-weights`` (``random_weights``) applies only where
    the weights file is missing, so a file that is there is always used. ``resolve`` is the component's own
    lookup of its file (raising a UserError when it is missing); None when no file is configured at all."""
    if not random_weights:
        return False
    if not resolve:
        return True
    try:
        resolve()
    except UserError:
        return True
    return False


def converted_entry(name: str) -> WeightsEntry | None:
    """The entry made from entry ``name`` by ``sr.weights convert`` (e.g. CLIP's TorchScript -> tensors)."""
    return next((e for e in registry().values() if e.convert_from == name), None)


def recorded_sha256(path: str | os.PathLike, weights_dir_override: str | os.PathLike | None = None) -> str | None:
    """The registry's sha256 for the file at ``path`` (None when no entry with a sha256 names it)."""
    path = Path(path).resolve()
    for name, ent in registry().items():
        if ent.sha256 and path_of(name, weights_dir_override).resolve() == path:
            return ent.sha256
    return None


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, hashed now (never from a cache)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_key(path: Path) -> dict[str, int]:
    """What must be unchanged for a cached hash to stand: the same inode (a replaced file is a new one
    unless written in place), size, modification and change times (``ctime`` cannot be set by a user)."""
    stat = path.stat()
    return {
        "dev": stat.st_dev,
        "inode": stat.st_ino,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
    }


def sha256_of(path: str | os.PathLike, *, full: bool = False) -> str:
    """sha256 of a file, memoised in a JSON sidecar next to it keyed by :func:`_stat_key`.

    The sidecar lives in the weights folder, so whoever can write the weights can also write it: the
    memo only saves time. ``full=True`` (``sr.weights verify --full``) always hashes the bytes; an
    unrestricted unpickle is only ever checked against :func:`file_sha256`, never against the memo.
    """
    path = Path(path)
    sidecar = path.with_name(f".{path.name}.sha256.json")
    key = _stat_key(path)
    if not full:
        try:
            cached = json.loads(sidecar.read_text())
            if isinstance(cached, dict) and cached.get("key") == key and isinstance(cached.get("sha256"), str):
                return cached["sha256"]
        except (OSError, ValueError):
            pass
    value = file_sha256(path)
    try:
        tmp = sidecar.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "sha256": value}))
        os.replace(tmp, sidecar)
    except OSError:
        pass  # a read-only weights directory only costs a re-hash next time
    return value


def verify(name: str, weights_dir_override: str | os.PathLike | None = None, *, full: bool = False) -> tuple[str, str]:
    """Check one entry on disk: returns (status, detail) with status in ok|missing|mismatch|unverified.

    ``full=True`` hashes the file's bytes even when its sidecar memo matches (see :func:`sha256_of`)."""
    ent = entry(name)
    path = path_of(name, weights_dir_override)
    if not path.is_file():
        return "missing", f"{path} (source: {ent.source})"
    if ent.size is not None and path.stat().st_size != ent.size:
        return "mismatch", f"{path}: size {path.stat().st_size} != expected {ent.size}"
    if ent.sha256 is None:
        return "unverified", f"{path}: no sha256 recorded in the registry"
    actual = sha256_of(path, full=full)
    if actual != ent.sha256:
        return "mismatch", f"{path}: sha256 {actual} != expected {ent.sha256}"
    return "ok", str(path)
