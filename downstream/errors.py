"""Errors about data: a bad image or label file, named with the file (and line) at fault."""

from __future__ import annotations

from sr.errors import UserError


class DataError(UserError):
    """A data file that cannot be used; the message names the file and the problem."""


class ImageReadError(DataError):
    pass


class LabelError(DataError):
    pass


class ClassMismatchError(UserError):
    """A task model trained for other classes than the data set's: one line naming both lists and the fix."""

    def __init__(self, model: str, model_classes, dataset_classes, package: str):
        super().__init__(
            f"the {model}'s classes {list(model_classes)} are not the data set's classes "
            f"{list(dataset_classes)}; train one for this data set: python -m downstream.{package}.train "
            "--dataset <its dataset.yaml> --out RUN, then use --tasks RUN/task.yaml"
        )
