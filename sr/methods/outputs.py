"""A folder of SR outputs made elsewhere, scored like any method: ``--methods outputs:DIR[=NAME]``.

A researcher whose method lives in its own environment runs it there and writes one image per frame of the data
set, named by the frame's id (``DIR/<id>.png``; ``.tif``/``.tiff``/``.jpg``/``.jpeg``/``.bmp`` too; an id with
folders, ``a/b``, is ``DIR/a/b.png``). The benchmark then treats the folder as a method called ``NAME`` (default:
the folder's name): every quality metric and task runs on those images as on any method's output.

Matching is by id only, and every mismatch is a row, never a silent skip: a frame without a file, a file that is
no frame of the data set (:meth:`OutputFolder.unmatched`), two files for one id, and a file whose size is not
``scale`` times the LR frame's (checked from the header, before decoding) are ``sr`` error rows naming the file.
8-bit files are read as they are (the benchmark stores SR outputs as 8-bit PNG), 16-bit ones divided by 65535.

The folder's content is part of the method's identity (a sha256 over every output file's name and bytes, in
``options``), so a changed file is scored again, never served from the run cache. Other scales than x4 need a
method YAML: ``factory: sr.methods.outputs:OutputFolder``, ``scale: 2``, ``options: {folder: DIR}``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sr.base import SRMethod
from sr.errors import ConfigError, UserError
from sr.vocab import METHOD_OUTPUTS_PREFIX

SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")
#: scale of ``--methods outputs:DIR`` (the paper's x4); a method YAML gives another
DEFAULT_SCALE = 4


class OutputError(UserError):
    """An output file that cannot stand for its frame (missing, extra, ambiguous, wrongly sized, unreadable)."""


def parse_outputs_spec(spec: str) -> tuple[str, Path]:
    """``outputs:DIR[=NAME]`` -> (NAME or the folder's name, DIR); a ConfigError for a malformed one."""
    body = spec[len(METHOD_OUTPUTS_PREFIX) :]
    folder, sep, name = body.rpartition("=") if "=" in body else (body, "", "")
    path = Path(folder).expanduser()
    name = name.strip() if sep else path.resolve().name
    if not folder or not name:
        raise ConfigError(f"--methods {spec!r}: expected {METHOD_OUTPUTS_PREFIX}DIR or {METHOD_OUTPUTS_PREFIX}DIR=NAME")
    if not path.is_dir():
        raise ConfigError(f"--methods {spec!r}: {path} is not a folder")
    return name, path


class OutputFolder(SRMethod):
    """Images in ``folder`` named by frame id, returned for their frames (see the module doc)."""

    has_weights = False
    reads_ids = True

    def __init__(self, name: str, scale: int, *, folder: str | os.PathLike, **common):
        super().__init__(name, scale, **common)
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise ConfigError(f"method {name!r}: output folder {self.folder} does not exist")
        self.files: dict[str, list[Path]] = {}
        for path in sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
            self.files.setdefault(path.relative_to(self.folder).with_suffix("").as_posix(), []).append(path)
        digest = hashlib.sha256()
        for paths in self.files.values():
            for path in paths:
                digest.update(path.relative_to(self.folder).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        # kept by the registry (sr.registry.load_method): a changed output file changes the cache key
        self.options = {"folder": str(self.folder), "contents_sha256": digest.hexdigest()}

    def unmatched(self, ids: list[str]) -> list[tuple[str, str]]:
        """(file id, error) of every output file that is no frame of the data set (``ids``: all its frame ids)."""
        known = set(ids)
        return [
            (file_id, f"{paths[0]}: no frame of the data set has the id {file_id!r} (extra output file)")
            for file_id, paths in self.files.items()
            if file_id not in known
        ]

    def _upscale_ids(self, x: torch.Tensor, ids: list[str]) -> torch.Tensor:
        height, width = x.shape[2] * self.scale, x.shape[3] * self.scale
        return torch.stack([self._read(i, height, width, x.shape[1]) for i in ids]).to(x.device)

    def _read(self, sample_id: str, height: int, width: int, channels: int) -> torch.Tensor:
        paths = self.files.get(sample_id)
        if not paths:
            raise OutputError(f"{self.folder}: no output file for frame {sample_id!r} (expected {sample_id}.png)")
        if len(paths) > 1:
            raise OutputError(f"{self.folder}: files {', '.join(p.name for p in paths)} all claim frame {sample_id!r}")
        path = paths[0]
        try:
            with Image.open(path) as img:  # the header: the size is checked before any pixel is decoded
                if img.size != (width, height):
                    raise OutputError(
                        f"{path}: {img.size[0]}x{img.size[1]} (WxH), expected {width}x{height} "
                        f"(x{self.scale} of frame {sample_id!r}'s LR)"
                    )
                if img.mode in _SIXTEEN_BIT:
                    arr = np.asarray(img, dtype=np.float32)[..., None] / 65535.0
                else:
                    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
        except OutputError:
            raise
        except Exception as exc:  # decoders raise many types: one row naming the file
            raise OutputError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
        arr = arr.reshape(height, width, -1)
        if arr.shape[2] != channels:
            arr = np.repeat(arr, channels, axis=2) if arr.shape[2] == 1 else arr.mean(axis=2, keepdims=True)
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - upscale() routes around it
        raise OutputError(f"method {self.name!r} returns files by frame id; call upscale(x, ids=[...])")

    def __repr__(self) -> str:
        return f"OutputFolder(name={self.name!r}, x{self.scale}, folder={self.folder}, {len(self.files)} files)"
