"""Poisoned weights files for the security tests: a pickle whose loading would run code.

Unpickling a :class:`Marker` creates the folder ``path``; a test that finds no marker folder after a
loader opened the file has shown that no code from it ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


class Marker:
    """Pickles to a call that creates the folder ``path``: proof that unpickling ran code."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def poison(path: Path, marker: str | os.PathLike) -> None:
    """Write a torch checkpoint at ``path`` whose loading with ``weights_only=False`` creates ``marker``.

    The payload sits where loaders look (``params``, ``model``) next to a plausible ``state_dict``; it is one
    object referenced twice, so it runs once when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = Marker(marker)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "params": payload, "model": payload}, path)
