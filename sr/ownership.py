"""Which folders and files are the tool's own: the one rule every command that writes a folder follows.

A folder is ours only when it holds :data:`MANIFEST`, a JSON file this module wrote: the tool's name, the kind of
folder (``run``, ``report``, ``prepared data set``, ...), an id chosen when the folder was made, the command that
made it, and the entries it wrote (``name`` for a file, ``name/`` for a folder of ours). A file *named* like one of
ours (``report.md``, ``dataset.yaml``, ``run.json``) proves nothing.

* an absent or empty folder becomes ours (the manifest is created with ``O_EXCL``, so concurrent commands sharing
  one output folder agree on one id);
* a folder with our manifest of the same kind is ours; only its listed entries are replaced or cleaned;
* any other existing folder is the user's: refused with a :class:`~sr.errors.UserError` (one ``error:`` line,
  exit 2). With ``--overwrite`` (:data:`sr.vocab.OPT_OVERWRITE`) we write beside its files, never replacing or
  deleting one of them: a name we would write that already exists there is refused;
* an output folder equal to, inside, or containing the source data is refused (:func:`check_apart`).

A *file* given as an output (``--out perf.csv``) follows the same rule with its manifest beside it
(``.<name>.irsr-owned.json``, :func:`claim_file`): it lists the file and the sha256 of what we wrote, so an existing
file is ours only while it is the very file we wrote; any other is refused unless ``--overwrite`` (then replaced).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sr.errors import UserError
from sr.vocab import OPT_OVERWRITE

MANIFEST = ".irsr-owned.json"
TOOL = "irsr-bench"
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass
class Owned:
    """A folder of ours and the entries we wrote in it (see the module doc)."""

    folder: Path
    kind: str
    id: str
    command: list[str]
    entries: set[str] = field(default_factory=set)
    beside_user_files: bool = False
    #: sha256 of the file entries we wrote, where recorded (a file output's manifest: :func:`claim_file`)
    digests: dict[str, str] = field(default_factory=dict)
    #: the manifest's file name in ``folder`` (:data:`MANIFEST`; a file output's own: :func:`file_manifest`)
    manifest: str = MANIFEST

    def owns(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` (inside the folder) is one of our entries or inside a folder entry of ours."""
        try:
            rel = Path(path).absolute().relative_to(self.folder).as_posix()
        except ValueError:
            return False
        return rel in self.entries or any(
            e.endswith("/") and (rel == e[:-1] or rel.startswith(e)) for e in self.entries
        )

    def sweep_temporaries(self, max_age_s: float = 3600.0) -> int:
        """Delete temporaries of our own writes a killed process never finished: inside our folder entries, and
        ``.<name>.XXXX.tmp`` beside our file entries (what :func:`sr.atomic.atomic_path` makes); older than
        ``max_age_s``. A user's hidden ``*.tmp`` files are never touched."""
        from sr.atomic import sweep_temporaries

        return sweep_temporaries(self.folder, max_age_s, ours=self._owns_temporary)

    def _owns_temporary(self, tmp: Path) -> bool:
        if tmp.parent != self.folder and self.owns(tmp.parent):
            return True
        files = [self.folder / e for e in self.entries if not e.endswith("/")] + [self.folder / MANIFEST]
        return any(tmp.parent == f.parent and tmp.name.startswith(f".{f.name}.") for f in files)

    def save(self) -> None:
        from sr.atomic import atomic_write_text

        atomic_write_text(self.folder / self.manifest, json.dumps(self._as_json(), indent=1, sort_keys=True))

    @contextlib.contextmanager
    def writing(self, path: str | os.PathLike) -> Iterator[Path]:
        """Write our file entry ``path`` atomically (:func:`sr.atomic.atomic_path`: yields the temporary path to
        write) and record its sha256 in the manifest: what makes an existing file ours (:func:`claim_file`)."""
        from sr.atomic import atomic_path

        path = Path(path).expanduser().absolute()
        if not self.owns(path):
            raise ValueError(f"{path} is not an entry of {self.folder / self.manifest}")
        with atomic_path(path) as tmp:
            yield tmp
        self.digests[path.relative_to(self.folder).as_posix()] = _sha256_file(path)
        self.save()

    def _as_json(self) -> dict:
        return {
            "tool": TOOL,
            "kind": self.kind,
            "id": self.id,
            "command": self.command,
            "entries": sorted(self.entries),
            "beside_user_files": self.beside_user_files,
            **({"sha256": dict(sorted(self.digests.items()))} if self.digests else {}),
        }


def add_overwrite_option(parser) -> None:
    """The one spelling and help of :data:`sr.vocab.OPT_OVERWRITE` on every command that writes a folder."""
    parser.add_argument(
        OPT_OVERWRITE,
        action="store_true",
        help="write into an existing folder this tool did not make, beside its files (none of them is replaced "
        "or deleted; a name clash is refused)",
    )


def read_manifest(folder: str | os.PathLike, manifest: str = MANIFEST) -> Owned | None:
    """The manifest of ``folder`` (or the one named ``manifest`` there) when it is one this module wrote; None
    otherwise."""
    folder = Path(folder).absolute()
    path = folder / manifest
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        return None
    ident, kind, entries = data.get("id"), data.get("kind"), data.get("entries")
    if not (isinstance(ident, str) and len(ident) == 32 and isinstance(kind, str) and isinstance(entries, list)):
        return None
    if not all(isinstance(e, str) and _safe_entry(e) for e in entries):
        return None
    command = data.get("command") if isinstance(data.get("command"), list) else []
    digests = data.get("sha256") if isinstance(data.get("sha256"), dict) else {}
    digests = {k: v for k, v in digests.items() if k in entries and isinstance(v, str)}
    beside = bool(data.get("beside_user_files"))
    return Owned(folder, kind, ident, [str(c) for c in command], set(entries), beside, digests, manifest)


def _safe_entry(entry: str) -> bool:
    parts = Path(entry.rstrip("/")).parts
    return bool(parts) and not Path(entry).is_absolute() and ".." not in parts and entry != MANIFEST


def file_manifest(path: str | os.PathLike) -> str:
    """The name of the manifest of the output file ``path`` (beside it): ``.<name>.irsr-owned.json``."""
    return f".{Path(path).name}{MANIFEST}"


def claim_file(path: str | os.PathLike, kind: str, *, overwrite: bool = False) -> Owned:
    """Make the output file ``path`` ours to write, or confirm that it is (the folder rule of the module doc, for one
    file); returns its manifest, to write the file with :meth:`Owned.writing`.

    An absent file becomes ours. An existing one is ours when its manifest (:func:`file_manifest`) is of ``kind`` and
    records the sha256 of its present content; any other existing file (a user's, or ours edited since) is refused
    with a :class:`~sr.errors.UserError`, unless ``overwrite``: then it is replaced by ours. So is a file of the
    manifest's name that this module did not write."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a file path")
    name = file_manifest(path)
    owned = read_manifest(path.parent, name)
    sidecar = path.parent / name
    if owned is None and (sidecar.exists() or sidecar.is_symlink()) and not overwrite:
        raise UserError(f"{sidecar} exists and was not written by this tool: choose a new file, or {OPT_OVERWRITE}")
    if owned is not None and (owned.kind != kind or owned.entries != {path.name}):
        owned = None
    if path.exists() or path.is_symlink():
        ours = owned is not None and not path.is_symlink() and path.is_file()
        if ours and owned.digests.get(path.name) != _sha256_file(path):
            ours = False
        if ours:
            return owned
        if not overwrite:
            raise UserError(
                f"{path} exists and was not written by this tool as a {kind} (or was changed since): choose a new "
                f"file, or pass {OPT_OVERWRITE} to replace it"
            )
    owned = Owned(path.parent, kind, uuid.uuid4().hex, list(sys.argv), {path.name}, manifest=name)
    try:
        owned.save()
    except OSError as exc:
        raise UserError(f"cannot write to directory {path.parent}: {exc.strerror or exc}") from None
    return owned


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _refusal(folder: Path, what: str) -> UserError:
    return UserError(
        f"{folder} exists and {what}: choose a new folder, or pass {OPT_OVERWRITE} to write beside its files "
        "(none of them is replaced or deleted)"
    )


def check_apart(out: str | os.PathLike, sources: Iterable[str | os.PathLike | None], what: str = "--out") -> None:
    """Refuse an output folder that is, is inside, or contains one of ``sources`` (the data read from)."""
    out_r = Path(out).expanduser().resolve()
    for src in sources:
        if src is None:
            continue
        src_r = Path(src).expanduser().resolve()
        if out_r == src_r or out_r.is_relative_to(src_r) or src_r.is_relative_to(out_r):
            relation = "is" if out_r == src_r else "is inside" if out_r.is_relative_to(src_r) else "contains"
            raise UserError(
                f"{what} {out} {relation} the source {src}: source data is read-only; choose a folder apart"
            )


def claim_folder(
    folder: str | os.PathLike, kind: str, entries: Iterable[str] = (), *, overwrite: bool = False
) -> Owned:
    """Make ``folder`` ours for ``entries`` or confirm that it is (see the module doc); returns its manifest.

    Entries are names relative to the folder (``name/`` for a folder we fill); an existing manifest of ours gains
    the ones it lacks when nothing of that name exists yet."""
    folder = Path(folder).expanduser().absolute()
    entries = set(entries)
    if any(not _safe_entry(e) for e in entries):
        raise ValueError(f"entries must be relative names inside the folder: {sorted(entries)}")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is not a directory (a file of that name exists)")
    owned = read_manifest(folder)
    if owned is None and folder.is_dir() and any(p.name != MANIFEST for p in folder.iterdir()):
        if not overwrite:
            raise _refusal(folder, f"was not made by this tool (it has no {MANIFEST})")
        return _write_beside(folder, kind, entries)
    if owned is None:
        owned = _create(folder, kind)
    if owned.kind != kind:
        raise UserError(f"{folder} is a {owned.kind} folder of this tool, not a {kind} folder: choose another folder")
    new = {e for e in entries - owned.entries if not (folder / e.rstrip("/")).exists()}
    clash = sorted(e for e in entries - owned.entries - new)
    if clash:
        raise UserError(f"{folder}: {', '.join(clash)} exist(s) and were not written by this tool; left as they are")
    if new:
        owned.entries |= new
        owned.save()
    return owned


def _create(folder: Path, kind: str) -> Owned:
    """A fresh manifest in an absent or empty folder; when a concurrent command created one first, that one."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to directory {folder}: {exc.strerror or exc}") from None
    owned = Owned(folder, kind, uuid.uuid4().hex, list(sys.argv))
    try:
        fd = os.open(folder / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        for _ in range(50):  # the other command is writing it
            found = read_manifest(folder)
            if found is not None:
                return found
            time.sleep(0.02)
        raise _refusal(folder, f"holds a {MANIFEST} this tool did not write") from None
    except OSError as exc:
        raise UserError(f"cannot write to directory {folder}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(owned._as_json(), indent=1, sort_keys=True))
    return owned


def _write_beside(folder: Path, kind: str, entries: set[str]) -> Owned:
    clash = sorted(e for e in entries if (folder / e.rstrip("/")).exists())
    if clash:
        raise UserError(
            f"{folder} is not a folder of this tool and already holds {', '.join(clash)}: {OPT_OVERWRITE} writes "
            "beside a user's files, never over them; choose a new folder"
        )
    owned = Owned(folder, kind, uuid.uuid4().hex, list(sys.argv), entries, beside_user_files=True)
    owned.save()
    return owned


@contextlib.contextmanager
def owned_folder(path: str | os.PathLike, kind: str, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new folder beside ``path`` to build in; when the block succeeds its files become ``path``'s.

    Everything built is listed in ``path``'s manifest. ``path`` absent, empty, or ours with nothing but our listed
    files: the new folder is swapped in whole (two renames; a failure leaves the old one). Ours with other files
    beside (a user's notes), or a user's folder with ``overwrite``: our files are moved in one by one, our
    previously listed files that the new build lacks are removed, and nothing else is touched. A user's folder
    without ``overwrite`` is refused before anything is built.
    """
    from sr.atomic import UMASK, swap_in

    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is not a directory (a file of that name exists)")
    owned = read_manifest(path)
    others = sorted(p.name for p in path.iterdir() if p.name != MANIFEST) if path.is_dir() else []
    if owned is None and others and not overwrite:
        raise _refusal(path, f"was not made by this tool as a {kind} (it has no {MANIFEST})")
    if owned is not None and owned.kind != kind:
        raise UserError(f"{path} is a {owned.kind} folder of this tool, not a {kind} folder: choose another folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    try:
        yield new
        built = {p.relative_to(new).as_posix() for p in new.rglob("*") if not p.is_dir()} - {MANIFEST}
        ident = owned.id if owned is not None else uuid.uuid4().hex
        manifest = Owned(path, kind, ident, list(sys.argv), built, owned is None and bool(others))
        foreign = set(others) - {Path(e.rstrip("/")).parts[0] for e in (owned.entries if owned else ())}
        if not foreign:
            (new / MANIFEST).write_text(json.dumps(manifest._as_json(), indent=1, sort_keys=True))
            os.chmod(new, 0o777 & ~UMASK)  # mkdtemp makes an owner-only folder; give the usual mode
            swap_in(new, path)
        else:
            _merge(new, path, built, owned.entries if owned else set(), manifest)
    finally:
        shutil.rmtree(new, ignore_errors=True)


def _merge(new: Path, path: Path, built: set[str], listed: set[str], manifest: Owned) -> None:
    clash = sorted(rel for rel in built if rel not in listed and (path / rel).exists())
    if clash:
        raise UserError(
            f"{path}: {', '.join(clash[:5])} exist(s) and were not written by this tool; nothing was replaced "
            "(choose a new folder)"
        )
    for rel in sorted(built):
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(new / rel, path / rel)
    for rel in sorted(listed - built):
        target = path / rel
        if target.is_file() and not target.is_symlink():
            target.unlink()
    manifest.save()
