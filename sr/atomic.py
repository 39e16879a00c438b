"""Atomic writes: a file or folder on disk is either complete or absent (or the previous one), never half written."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

UMASK = os.umask(0)
os.umask(UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same directory; on success fsync it and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~UMASK)  # mkstemp makes owner-only files; give the usual mode
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def swap_in(new: Path, path: Path) -> None:
    """Rename ``new`` onto ``path``, moving an existing ``path`` aside first and back if that rename fails."""
    if not path.exists():
        os.rename(new, path)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    old = aside / path.name
    try:
        os.rename(path, old)
    except OSError:
        aside.rmdir()
        raise
    try:
        os.rename(new, path)
    except OSError as exc:
        kept = f"is kept as {old}"
        with contextlib.suppress(OSError):
            os.rename(old, path)
            kept = "is left in place"
            aside.rmdir()
        raise OSError(
            exc.errno,
            f"could not rename the new folder into place ({exc.strerror or exc}); the previous one {kept}",
            str(path),
        ) from exc
    shutil.rmtree(aside, ignore_errors=True)


def sweep_temporaries(
    root: str | os.PathLike, max_age_s: float = 3600.0, ours: Callable[[Path], bool] | None = None
) -> int:
    """Delete the temporaries (``.<name>.XXXX.tmp``) of writes a killed process never finished, when older
    than ``max_age_s`` (so a concurrent writer's write in progress is not touched); returns how many. ``root``
    must be a folder wholly of ours (the run's cache), or ``ours`` says which temporaries are (in a folder that may
    hold a user's files: :meth:`sr.ownership.Owned.sweep_temporaries`)."""
    removed = 0
    cutoff = time.time() - max_age_s
    for tmp in Path(root).rglob(".*.tmp"):
        if ours is not None and not ours(tmp):
            continue
        try:
            if tmp.stat().st_mtime <= cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
