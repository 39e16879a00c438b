"""The one command-line convention of every entry point.

- :class:`ArgumentParser` turns argparse's own mistakes (unknown option, bad value, missing argument)
  into :class:`UsageError` instead of printing usage and exiting, and adds ``--debug``.
- Option types (:func:`device`, :func:`positive_int`, :func:`names`, :func:`out_dir`, ...) validate a
  value while the command line is parsed, so a mistake is reported before any work starts.
- :func:`cli_entry` wraps a command's ``main(argv)``: a :class:`~sr.errors.UserError` (and an
  ``OSError`` naming a file) becomes one ``error: ...`` line on stderr and a non-zero exit code with no
  traceback; ``--debug`` prints the traceback first.

Shared options are spelled through :mod:`sr.vocab` (``OPT_DEVICE``, ``OPT_WEIGHTS_DIR``, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from sr.errors import ConfigError, UserError
from sr.runtime import DEVICE_AUTO, resolve_device
from sr.vocab import ENV_WEIGHTS_DIR, OPT_DEBUG, OPT_DEVICE, OPT_WEIGHTS_DIR

#: exit code of a usage or input mistake (argparse's own convention)
EXIT_USAGE = 2
#: exit code of an environment failure that is not the command line's fault (disk full, I/O error)
EXIT_FAILURE = 1


class UsageError(UserError):
    """A command-line argument is missing, unknown or has a bad value."""


#: how the running command was invoked when that is not ``python -m MODULE`` (``irsr run``): its usage lines say so
_INVOKED_AS: contextvars.ContextVar[str | None] = contextvars.ContextVar("irsr_invoked_as", default=None)


@contextlib.contextmanager
def invoked_as(prog: str):
    """Within the block, a parser whose ``prog`` is ``python -m ...`` (an entry point's own) is named ``prog``."""
    token = _INVOKED_AS.set(prog)
    try:
        yield
    finally:
        _INVOKED_AS.reset(token)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` only where the help text does not state a default and X is not None."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with errors raised as :class:`UsageError` and a ``--debug`` option (top level only).

    Options are spelled out in full (``allow_abbrev=False``): ``--size`` is an error, not ``--sizes``, so a
    command line means the same after a tool gains an option that shares a prefix."""

    def __init__(self, *args, debug_option: bool = True, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        kwargs.setdefault("allow_abbrev", False)
        if _INVOKED_AS.get() and str(kwargs.get("prog") or "").startswith("python -m "):
            kwargs["prog"] = _INVOKED_AS.get()
        super().__init__(*args, **kwargs)
        if debug_option:
            self.add_argument(
                OPT_DEBUG, action="store_true", help="show the full traceback of an error instead of one line"
            )

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", functools.partial(type(self), debug_option=False))
        return super().add_subparsers(**kwargs)

    def add_device(self) -> None:
        """``--device``, default ``auto`` in every entry point (argparse resolves the default through ``device``)."""
        self.add_argument(
            OPT_DEVICE,
            type=device,
            default=DEVICE_AUTO,
            help="torch device: auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
        )

    def add_weights_dir(self) -> None:
        self.add_argument(
            OPT_WEIGHTS_DIR,
            type=dir_path,
            default=None,
            help=f"directory of pretrained weights (default: ${ENV_WEIGHTS_DIR} or ~/.cache/irsr/weights)",
        )


# ----- option types: each returns the parsed value or raises argparse.ArgumentTypeError --------------


def device(spec: str) -> str:
    """A torch device that exists here (:func:`sr.runtime.resolve_device`: ``auto`` is CUDA when present)."""
    try:
        return resolve_device(spec)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _whole_number(text, 0)


def _whole_number(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {value}")
    return value


def names(text: str) -> list[str]:
    """A comma-separated list of non-empty names (``a,b``); an empty entry is a mistake, not 'all'."""
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated names, got {text!r}")
    if not all(items):
        raise argparse.ArgumentTypeError(f"empty name in {text!r}")
    return items


def names_from(choices) -> Callable[[str], list[str]]:
    """A :func:`names` type whose every name must be one of ``choices`` (checked while parsing)."""
    allowed = tuple(choices)

    def parse(text: str) -> list[str]:
        items = names(text)
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(allowed)}")
        return items

    return parse


def dir_path(text: str) -> Path:
    """A directory path that may not exist yet but is not a file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is not a directory")
    return path


def existing_file(text: str) -> Path:
    """A regular file that exists and can be opened."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path} is not a file" if path.exists() else f"{path} does not exist")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    return path


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and prove a file can be written in it; UserError otherwise.

    Probing by writing (not ``os.access``) also catches read-only mounts and root-owned runs."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is not a directory (a file of that name exists)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to directory {path}: {exc.strerror or exc}") from None
    return path


def out_dir(text: str) -> Path:
    """An output directory that exists or can be created, and is writable."""
    try:
        return check_writable_dir(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def out_file(text: str) -> Path:
    """An output file path whose folder is writable and that is not a directory."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory, expected a file path")
    out_dir(str(path.parent))
    return path


# ----- the entry-point wrapper ----------------------------------------------------------------------


def cli_entry(main: Callable[..., int]) -> Callable[..., int]:
    """Decorate ``main(argv)``: mistakes become ``error: ...`` on stderr with exit 2 (OSError: exit 1).

    The message of a UserError is printed as it is (a multi-line explanation stays readable); with
    ``--debug`` on the command line the traceback is printed before it. The process-wide start-up
    tuning (:func:`sr.runtime.tune_process`: CPU allocator) runs first.
    """

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        from sr.runtime import tune_process

        tune_process()
        args = sys.argv[1:] if argv is None else list(argv)
        debug = OPT_DEBUG in args
        try:
            return main(argv)
        except UserError as exc:
            error, code, message = exc, EXIT_USAGE, str(exc)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            error, code, message = exc, EXIT_FAILURE, f"{exc.strerror or exc}{where}"
        except KeyboardInterrupt as exc:
            error, code, message = exc, 130, "interrupted"
        if debug:
            traceback.print_exception(error)
        print(f"error: {message.strip()}", file=sys.stderr)
        return code

    return wrapper
