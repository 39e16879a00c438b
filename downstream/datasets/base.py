"""Base class and registry of data-set kinds; data-set instances are YAML files in configs/datasets/."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch

from downstream.errors import DataError
from downstream.sample import Sample
from sr import plugins
from sr.degrade import degrade, modcrop
from sr.registry import Registry
from sr.vocab import DEGRADATION_DEFAULT, ENV_DATA_DIR, FLAG_SUBSET_SMALLER

log = logging.getLogger(__name__)
#: data-set kinds: the Dataset subclasses of this package's modules, by kind name
DATASET_KINDS = Registry(
    "data-set kind", locations=("downstream.datasets",), name_attr="kind", plugin_kind="dataset-kind"
)
#: class decorator: ``@register_kind("folder")`` makes a Dataset subclass the data-set kind ``folder``
#: (``sr.plugins.register("dataset-kind", ...)``, the one registration of every plug-in kind)
register_kind = functools.partial(plugins.register, "dataset-kind")
_WARNED: set[tuple] = set()
DEFAULT_DATA_DIR = Path.home() / ".cache" / "irsr" / "data"


def data_dir() -> Path:
    """Root for relative data-set paths: ``IRSR_DATA_DIR`` or ``~/.cache/irsr/data``."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def resolve_root(root: str | os.PathLike) -> Path:
    root = Path(os.path.expandvars(str(root))).expanduser()
    return root if root.is_absolute() else data_dir() / root


def file_fingerprint(*paths: Path | None) -> str:
    """Changes when any of the files changes (size and modification time)."""
    parts = []
    for p in paths:
        if p is not None and p.exists():
            st = p.stat()
            parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


class Dataset(ABC):
    """A list of sample ids and a way to load each; ``load`` raises DataError naming the bad file."""

    kind: ClassVar[str] = ""
    #: label field of the samples (``downstream.sample.LABEL_FIELDS``) -> its class names, for the labels it has
    label_classes: Mapping[str, tuple[str, ...]] = MappingProxyType({})

    def __init__(
        self, name: str, *, scale: int = 4, degradation: str = DEGRADATION_DEFAULT, channels: int | str = "auto"
    ):
        self.name = name
        self.scale = int(scale)
        self.degradation = degradation  # a downstream.degradations label: "bicubic" (the paper's), "noise@3", ...
        self.degradation_seed = 0  # the seed of its random draws (set with downstream.degradations.degraded)
        self.channels = channels
        self.options: dict[str, Any] = {}  # filled by the registry

    @abstractmethod
    def ids(self) -> list[str]:
        """Sample ids in a fixed order."""

    @abstractmethod
    def load(self, sample_id: str, labels: bool = True) -> Sample:
        """The sample ``sample_id``; raises DataError for a bad file. ``labels=False`` reads the frames only (the
        runner's fallback when a label file is bad, so quality metrics still see every frame)."""

    def classes(self, label: str) -> tuple[str, ...] | None:
        """Class names of the samples' ``label`` field (e.g. ``"boxes"``); None when the samples lack it."""
        return self.label_classes.get(label)

    #: how many frames the definition asks for (a named subset such as Set5, or ``limit``); None: all there are
    asked: int | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        """Row flags every result of this data set carries: ``subset_smaller`` when it has fewer frames than asked."""
        return (FLAG_SUBSET_SMALLER,) if self.asked is not None and len(self.ids()) < self.asked else ()

    def warn_if_smaller(self) -> None:
        """Log a warning (once per data set and size) when it has fewer frames than its definition asks for."""
        key = (self.name, self.asked, len(self.ids()))
        if FLAG_SUBSET_SMALLER in self.flags and key not in _WARNED:
            _WARNED.add(key)
            log.warning(
                "data set %r has %d frames, fewer than the %d asked; its rows are flagged %r",
                self.name,
                len(self.ids()),
                self.asked,
                FLAG_SUBSET_SMALLER,
            )

    def identity(self) -> dict[str, Any]:
        """What the cache key of this data set's SR outputs and metric rows depends on."""
        return {
            "kind": self.kind,
            "name": self.name,
            "scale": self.scale,
            "degradation": self._degradation_identity(),
            "channels": self.channels,
            "options": json.loads(json.dumps(self.options, default=str)),
        }

    def degradation_spec(self):
        """The data set's degradation resolved (``downstream.degradations.resolve``: YAML reads and option checks,
        tens of ms for a composite), once per data set object and label rather than per frame."""
        from downstream.degradations.pipeline import resolve

        cached = self.__dict__.get("_degradation_spec")
        if cached is None or cached[0] != self.degradation:
            cached = self._degradation_spec = (self.degradation, resolve(self.degradation))
        return cached[1]

    def _degradation_identity(self):
        from downstream.degradations.pipeline import identity

        return identity(self.degradation, self.degradation_seed)

    # -- helpers for subclasses --------------------------------------------------------------
    def make_sample(
        self,
        sample_id: str,
        hr: np.ndarray | None,
        lr: np.ndarray | None = None,
        *,
        boxes: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        source: str = "",
        fingerprint: str = "",
        lr_missing: str = "",
    ) -> Sample:
        """Build a Sample from (H, W, C) float arrays: modcrop HR, degrade it when no LR is given -- unless
        ``lr_missing`` says a paired LR file is missing: then the sample has no LR (never a made-up one). Under a
        degradation other than bicubic, LR is always made from HR with it (``downstream.degradations``)."""
        if hr is not None and min(hr.shape[:2]) < self.scale:
            raise DataError(
                f"{source}: frame {hr.shape[1]}x{hr.shape[0]} is smaller than the scale {self.scale} (an "
                f"x{self.scale} data set needs frames of at least {self.scale}x{self.scale} pixels)"
            )
        hr_t = None if hr is None else modcrop(torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1), self.scale)
        if mask is not None and hr_t is not None:
            mask = mask[: hr_t.shape[1], : hr_t.shape[2]]
        if self.degradation != DEGRADATION_DEFAULT:  # the degradation axis: LR made from HR, never the data set's LR
            from downstream.degradations import degrade as degrade_with

            if hr_t is None:
                raise DataError(
                    f"{source}: degradation {self.degradation!r} needs the HR frame; this sample has only LR"
                )
            lr_t = degrade_with(
                hr_t, self.degradation_spec(), scale=self.scale, seed=self.degradation_seed, sample_id=sample_id
            )
        elif lr is not None:
            lr_t = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)
            if hr_t is not None:
                expected = (hr_t.shape[1] // self.scale, hr_t.shape[2] // self.scale)
                if tuple(lr_t.shape[1:]) != expected:
                    raise DataError(
                        f"{source}: LR is {lr_t.shape[2]}x{lr_t.shape[1]}, expected "
                        f"{expected[1]}x{expected[0]} for x{self.scale} of the HR frame"
                    )
                if lr_t.shape[0] != hr_t.shape[0]:
                    lr_t = lr_t.mean(0, keepdim=True) if hr_t.shape[0] == 1 else lr_t.expand(3, -1, -1)
        elif lr_missing and hr_t is not None:
            lr_t = None
        elif hr_t is not None:
            lr_t = degrade(hr_t, self.scale)
        else:
            raise DataError(f"{source}: a sample needs an HR or an LR image")
        return Sample(
            id=sample_id,
            lr=None if lr_t is None else lr_t.contiguous(),
            hr=None if hr_t is None else hr_t.contiguous(),
            boxes=boxes,
            mask=mask,
            source=source,
            fingerprint=fingerprint,
            lr_missing=lr_missing if lr_t is None else "",
        )
