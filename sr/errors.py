"""User-facing errors shared by every package of the project.

Anything a user can cause (a wrong name, a missing file, a bad config value) raises a subclass of
:class:`UserError`; command-line entry points (:func:`sr.cli.cli_entry`) print its message after
``error:`` and exit 2 instead of showing a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sr.vocab import ENV_WEIGHTS_DIR, OPT_WEIGHTS_DIR


class UserError(Exception):
    """An error caused by input the user controls; its message says what to do."""


class ConfigError(UserError):
    """A YAML config or option is invalid."""


class UnknownNameError(UserError, KeyError):
    """A method, data set, metric, suite or weights name that no registry knows."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}")
        self.kind, self.name = kind, name

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class MissingWeightsError(UserError):
    """A weights file that a method or metric needs is not on disk."""

    def __init__(self, name: str, path, source: str | None, how: str | None = None):
        where = how or (f" Get it from {source} and place it there" if source else " No public source is known")
        super().__init__(
            f"weights {name!r} not found: expected {path}.{where} (or set {ENV_WEIGHTS_DIR} / {OPT_WEIGHTS_DIR})."
        )
        self.name, self.path, self.source = name, path, source


def check_keys(section: str, given: dict, allowed: Iterable[str]) -> None:
    """Raise a ConfigError naming every key of ``given`` that is not in ``allowed``."""
    allowed = set(allowed)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{section}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(sorted(allowed))}")
