"""Interpolation baselines (PIL resampling) and the ``lr_native`` / ``hr`` reference rows (``lr`` is PIL bicubic).

PIL is applied per channel. Inputs that are exactly 8-bit (every value k/255, as frames read from
8-bit PNGs are) go through PIL's 8-bit path, so the result equals ``Image.resize`` on the 8-bit
image bit for bit; other inputs go through PIL's 32-bit float path (mode ``F``).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from sr.base import SRMethod
from sr.errors import ConfigError

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
}


def is_8bit(x: torch.Tensor) -> bool:
    """True when every value of ``x`` (in [0,1]) is a multiple of 1/255 up to float32 rounding."""
    scaled = x.detach().double() * 255.0
    return bool(torch.all(torch.abs(scaled - torch.round(scaled)) < 1e-3))


def pil_resize(x: torch.Tensor, size: tuple[int, int], resample: str) -> torch.Tensor:
    """Resize float [B,C,h,w] in [0,1] to ``size`` = (H, W) with PIL, per channel."""
    mode = _RESAMPLE[resample]
    height, width = size
    eight_bit = is_8bit(x)
    arr = x.detach().cpu().numpy()
    out = np.empty(arr.shape[:2] + (height, width), dtype=np.float32)
    for b in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            if eight_bit:
                img = Image.fromarray(np.round(arr[b, c] * 255.0).astype(np.uint8), mode="L")
                out[b, c] = np.asarray(img.resize((width, height), mode), dtype=np.float32) / 255.0
            else:
                img = Image.fromarray(arr[b, c].astype(np.float32), mode="F")
                out[b, c] = np.asarray(img.resize((width, height), mode), dtype=np.float32)
    return torch.from_numpy(out).clamp_(0.0, 1.0).to(x.device)


class PILResize(SRMethod):
    """Upscale with one of PIL's resampling filters (bicubic / nearest / lanczos / bilinear)."""

    has_weights = False

    def __init__(self, name: str, scale: int, *, resample: str = "bicubic", **common):
        super().__init__(name, scale, **common)
        if resample not in _RESAMPLE:
            raise ConfigError(f"method {name!r}: resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
        self.resample = resample

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        return pil_resize(x, (x.shape[2] * self.scale, x.shape[3] * self.scale), self.resample)


class LowResolution(SRMethod):
    """Returns the LR input unchanged (scale 1): the ``lr_native`` row, scored by no-reference metrics only (the
    runner skips full-reference metrics and tasks for outputs not at HR size). The paper's "Low Resolution" row is
    the LR interpolated to HR size (``lr``: bicubic)."""

    has_weights = False

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Reference(SRMethod):
    """Returns the HR reference image: the "High Resolution" row of the paper's tables (the LR input only gives
    the output's shape, so it needs no LR file)."""

    has_weights = False
    reads_lr = False

    def needs_reference(self) -> bool:
        return True

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - upscale() routes around it
        raise RuntimeError("the hr method needs the reference image")

    def _upscale_with_reference(self, x: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        if reference is None:
            raise ValueError("the 'hr' method returns the reference image; pass reference=HR")
        expected = (x.shape[2] * self.scale, x.shape[3] * self.scale)
        if tuple(reference.shape[2:]) != expected:
            raise ValueError(f"hr: reference is {tuple(reference.shape[2:])}, expected {expected}")
        if reference.shape[1] != x.shape[1]:
            reference = (
                reference.mean(1, keepdim=True)
                if x.shape[1] == 1
                else reference.expand_as(torch.empty(x.shape[0], 3, *expected))
            )
        return reference.to(torch.float32)
