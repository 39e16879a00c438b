"""Errors about data: a bad image or label file, named with the file (and line) at fault."""
from __future__ import annotations

from sr.errors import UserError


class DataError(UserError):
    """A data file that cannot be used; the message names the file and the problem."""


class ImageReadError(DataError):
    pass


class LabelError(DataError):
    pass
