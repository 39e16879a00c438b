"""The project's one safe way to read network weights.

Third-party ``.pth`` files are pickles, so they are read with ``torch.load(weights_only=True)`` or,
for ``.safetensors``, with safetensors. A file that needs arbitrary code to unpickle is refused with
:class:`CheckpointError` naming the file. The single unrestricted path, :func:`load_trusted_pickle`,
is reached only through an explicit user opt-in (``--trust-pickle``) for a file the user vouches for.

Upstream layouts that :func:`extract_state_dict` unwraps: a flat state dict, ``{'state_dict': ...}``
(ResShift / SinSR / DifIISR trainers), BasicSR ``{'params_ema': ..., 'params': ...}`` (UPSR),
keys prefixed with ``module.`` (DDP) or ``_orig_mod.`` (torch.compile).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from sr.errors import UserError

DEFAULT_KEYS = ("state_dict", "params_ema", "params")
_PREFIXES = ("module.", "_orig_mod.")
_SHOW = 10
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable, unsafe, or does not fit the architecture."""


def load_checkpoint(path: str | os.PathLike, safe_globals: Sequence[type | tuple[type, str]] = ()) -> dict:
    """Read a checkpoint without executing code: safetensors, else ``torch.load(weights_only=True)``.

    ``safe_globals`` admits extra globals to the weights-only unpickler, as ``(stand-in, "module.Name")`` pairs
    (the unpickler makes the stand-in wherever the file names the global: ultralytics checkpoints pickle whole
    models, read as inert records) or as classes. The tensor records of a zip checkpoint are checked against the
    file's size before anything is read (:func:`check_records`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read safetensors checkpoint {path}: {exc}") from exc
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty (0 bytes; an interrupted copy?)")
    check_records(path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(refusal_message(path, exc)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_reason(exc)}") from exc


def check_records(path: Path) -> None:
    """A zip checkpoint's records must be stored uncompressed and fit in the file: what torch allocates for
    them is then bounded by the file's own size (a compressed record could inflate to any size)."""
    if not zipfile.is_zipfile(path):
        return
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_reason(exc)}") from None
    total = 0
    for info in infos:
        total += info.file_size
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > size or total > size:
            raise CheckpointError(
                f"cannot read checkpoint {path}: record {info.filename!r} claims {info.file_size} bytes "
                f"({'compressed' if info.compress_type != zipfile.ZIP_STORED else 'stored'}) in a file of {size} "
                "bytes; torch writes every record uncompressed"
            )


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else f"{type(exc).__name__} (truncated or not a checkpoint?)"


def refusal_message(path: Path, exc: BaseException) -> str:
    """Why a pickle was refused (the global it names) and how a user converts a file they trust."""
    found = _GLOBAL.search(str(exc))
    what = f"the global {found.group(1)!r}" if found else "an object that is not a tensor"
    return (
        f"refusing to load {path}: it pickles {what}, which could run code when read; only tensors and plain "
        f"containers are read. If you trust the file's origin, convert it once into a safetensors file: "
        f"python -m sr.weights convert {path} --sha256 <the sha256 you trust> (it checks the hash before "
        f"unpickling and writes {path.with_suffix('.safetensors').name} beside it)."
    )


def load_trusted_pickle(path: str | os.PathLike, sha256: str | None):
    """Unrestricted read of a pickle or TorchScript archive: it runs whatever code the file holds, so it is
    reached only behind an explicit user opt-in (``--trust-pickle``, ``sr.weights convert``) AND only when
    the file's sha256, hashed now, equals ``sha256`` (the registry's, or one the user states): trust is in
    one known file, never in a path. A TorchScript archive (OpenAI's CLIP) gives its ``state_dict()``."""
    from sr.weights import file_sha256

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if not sha256:
        raise CheckpointError(
            f"refusing an unrestricted unpickle of {path}: no sha256 to check it against (the "
            f"registry records none; state the one you trust with --sha256)"
        )
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise CheckpointError(
            f"refusing an unrestricted unpickle of {path}: its sha256 is {actual}, not the trusted {sha256.lower()}"
        )
    with zipfile.ZipFile(path) if zipfile.is_zipfile(path) else contextlib.nullcontext() as archive:
        torchscript = archive is not None and any(n.endswith("/constants.pkl") for n in archive.namelist())
    if torchscript:
        return dict(torch.jit.load(path, map_location="cpu").state_dict())
    return torch.load(path, map_location="cpu", weights_only=False)


def _strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def extract_state_dict(obj: Mapping, keys: Sequence[str] = DEFAULT_KEYS) -> dict[str, torch.Tensor]:
    """Unwrap the first of ``keys`` present (in order) and strip ``module.`` / ``_orig_mod.``."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint holds a {type(obj).__name__}, expected a dict of tensors")
    for key in keys:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"checkpoint holds no tensors (top-level keys: {sorted(obj)[:_SHOW]})")
    return _strip_prefixes(tensors)


def _listing(title: str, items: list[str]) -> str:
    more = f" ... (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return f"  {title} ({len(items)}): {', '.join(items[:_SHOW])}{more}"


def load_into(
    model: nn.Module, path_or_state: str | os.PathLike | Mapping, arch_name: str, keys: Sequence[str] = DEFAULT_KEYS
) -> nn.Module:
    """Strictly load weights (buffers included) into ``model``; explain any mismatch.

    ``path_or_state`` is a checkpoint path or an already-loaded object; returns ``model``.
    """
    source = "the given state dict" if isinstance(path_or_state, Mapping) else str(path_or_state)
    raw = path_or_state if isinstance(path_or_state, Mapping) else load_checkpoint(path_or_state)
    state = extract_state_dict(raw, keys)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs expected {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        parts = [f"checkpoint {source} does not fit architecture {arch_name!r}:"]
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                parts.append(_listing(title, items))
        parts.append("Check that the weights file belongs to this method / config.")
        raise CheckpointError("\n".join(parts))
    model.load_state_dict(state, strict=True)
    return model
