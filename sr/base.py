"""The one interface every SR method implements.

``upscale(x)`` takes float32 ``[B, C, h, w]`` in [0, 1] with C in {1, 3} and returns
``[B, C, h*s, w*s]`` in [0, 1]. Infrared frames are single-channel; methods whose networks need
three channels set ``rgb_only = True`` and this class replicates a single channel to three before
the network and averages the three back afterwards: that is the only place it happens.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from sr.errors import UserError
from sr.vocab import FLAG_RANDOM_WEIGHTS


class SRMethod(ABC):
    """Base class of all SR methods. Subclasses implement ``_upscale`` on validated input."""

    rgb_only: ClassVar[bool] = False
    has_weights: ClassVar[bool] = True  # False for methods without learned weights (interpolation, reference rows)
    reads_lr: ClassVar[bool] = True  # False for the reference row: it scores even on a frame with no LR file
    reads_ids: ClassVar[bool] = False  # True: the output depends on the frames' ids (sr.methods.outputs)
    libraries: ClassVar[tuple[str, ...]] = ("torch",)  # distributions that compute the output (in its cache key)

    def __init__(
        self,
        name: str,
        scale: int,
        *,
        device: str = "cpu",
        weights_dir: str | os.PathLike | None = None,
        random_weights: bool = False,
    ):
        if int(scale) != scale or scale < 1:
            raise UserError(f"method {name!r}: scale must be a positive integer, got {scale!r}")
        self.name = name
        self.scale = int(scale)
        self.device = torch.device(device)
        self.weights_dir = weights_dir
        self.random_weights = bool(random_weights)
        self.options: dict[str, Any] = {}  # filled by the registry with the options it was built from

    # -- what the runner and reports need to know ------------------------------------------
    @property
    def flags(self) -> tuple[str, ...]:
        """Markers that must travel with every number this method produces."""
        return (FLAG_RANDOM_WEIGHTS,) if self.random_weights and self.has_weights else ()

    def weight_files(self) -> dict[str, Path]:
        """Weights files this instance was built from (name -> path), for the cache key."""
        return {}

    def needs_reference(self) -> bool:
        return False

    # -- the interface ------------------------------------------------------------------------
    def upscale(
        self, x: torch.Tensor, reference: torch.Tensor | None = None, ids: list[str] | None = None
    ) -> torch.Tensor:
        """Super-resolve ``x`` (float32 [B,C,h,w] in [0,1], C in {1,3}) by ``self.scale``; ``ids``: the frames' ids
        (the runner passes them; only methods with ``reads_ids`` use them)."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError(f"{self.name}: expected a 4-D tensor [B,C,h,w], got {getattr(x, 'shape', type(x))}")
        if x.shape[1] not in (1, 3):
            raise ValueError(f"{self.name}: expected 1 or 3 channels, got {x.shape[1]}")
        if not x.is_floating_point():
            raise ValueError(f"{self.name}: expected a floating tensor in [0,1], got {x.dtype}")
        x = x.to(torch.float32).clamp(0.0, 1.0)
        channels = x.shape[1]
        if self.reads_ids:
            if ids is None or len(ids) != x.shape[0]:
                raise ValueError(f"{self.name}: needs one frame id per image (ids={ids!r})")
            y = self._upscale_ids(x, list(ids))
        elif self.needs_reference():
            y = self._upscale_with_reference(x, reference)
        elif self.rgb_only and channels == 1:
            y = self._upscale(x.expand(-1, 3, -1, -1).contiguous()).mean(dim=1, keepdim=True)
        else:
            y = self._upscale(x)
        expected = (x.shape[0], channels, x.shape[2] * self.scale, x.shape[3] * self.scale)
        if tuple(y.shape) != expected:
            raise RuntimeError(f"{self.name}: produced {tuple(y.shape)}, expected {expected}")
        return y.to(torch.float32).clamp(0.0, 1.0)

    @abstractmethod
    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale validated input (3 channels when ``rgb_only``)."""

    def _upscale_with_reference(self, x: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} does not use a reference image")

    def _upscale_ids(self, x: torch.Tensor, ids: list[str]) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} does not read frame ids")

    def unmatched(self, ids: list[str]) -> list[tuple[str, str]]:
        """(id, error) of what this method holds for no frame of a data set with frame ``ids`` (an outputs folder's
        extra files); the runner makes each an error row."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, scale={self.scale}, device={self.device})"
