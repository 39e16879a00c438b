"""The contract between the runner and a downstream task (detection, segmentation).

The runner super-resolves every sample of a data set, writes each SR frame as a PNG, and hands the
task one :class:`TaskItem` per frame. The task returns :class:`MetricRow` s (overall and per class);
the runner adds suite / data set / method / flags and writes them to ``results.csv``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TaskItem:
    id: str
    image: Path                      # SR output (or HR / LR for the reference rows), 8-bit PNG at HR size
    boxes: np.ndarray | None = None  # (N, 5) class id, x1, y1, x2, y2 in pixels of ``image``
    mask: np.ndarray | None = None   # (H, W) uint8 ids, 255 = ignore


@dataclass(frozen=True)
class MetricRow:
    metric: str        # e.g. "mAP50-95", "IoU", "psnr"
    value: float
    cls: str = "all"   # class name, or "all" for the overall value
    n: int = 0         # number of images the value is computed over


class Task(ABC):
    """A downstream task evaluated on SR outputs."""

    name: str = ""

    @abstractmethod
    def applicable(self, dataset: Any) -> bool:
        """Whether the data set carries the labels this task needs."""

    @abstractmethod
    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        """Evaluate on every item; ``workdir`` is a private scratch directory."""

    def identity(self) -> dict[str, Any]:
        """What this task's result rows depend on (model weights hash, evaluation settings)."""
        return {"name": self.name}

    @property
    def flags(self) -> tuple[str, ...]:
        return ()


def load_task(config: str, **common: Any) -> Task:
    """Build the task described by ``configs/tasks/<config>.yaml`` (``factory`` + ``options``).

    ``common`` carries runner-wide settings every task accepts: ``device``, ``weights_dir``,
    ``random_weights``.
    """
    import importlib

    from sr.config import CONFIG_DIR, config_names, read_yaml
    from sr.errors import ConfigError, UnknownNameError, check_keys

    path = CONFIG_DIR / "tasks" / f"{config}.yaml"
    if not path.is_file():
        raise UnknownNameError("task config", config, config_names("tasks"))
    spec = read_yaml(path)
    check_keys(str(path), spec, {"factory", "options", "description"})
    module_name, _, attr = str(spec.get("factory", "")).partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{path}: task factory {spec.get('factory')!r} cannot be imported: {exc}") from None
    return factory(**{**(spec.get("options") or {}), **common})
