"""Degradations that make LR inputs from HR frames.

``bicubic`` is the paper's: ``PIL.Image.resize((W // s, H // s), Image.BICUBIC)`` of the 8-bit HR
frame, which reproduces the official DifIISR LR files bit for bit. HR frames whose size is not a
multiple of the scale are first cropped at the bottom/right to the nearest multiple ("modcrop"), so
that SR outputs and references have the same size.
"""

from __future__ import annotations

import torch

from sr.errors import UnknownNameError
from sr.methods.interpolation import pil_resize

DEGRADATIONS = ("bicubic",)


def modcrop(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop [..., H, W] to multiples of ``scale`` (bottom/right)."""
    h, w = hr.shape[-2] - hr.shape[-2] % scale, hr.shape[-1] - hr.shape[-1] % scale
    return hr[..., :h, :w]


def degrade(hr: torch.Tensor, scale: int = 4, kind: str = "bicubic") -> torch.Tensor:
    """LR [C, h, w] from HR [C, H, W] (already modcropped) with degradation ``kind``."""
    if kind not in DEGRADATIONS:
        raise UnknownNameError("degradation", kind, DEGRADATIONS)
    if hr.shape[-2] < scale or hr.shape[-1] < scale:
        raise ValueError(f"HR frame {tuple(hr.shape[-2:])} is smaller than the scale {scale}")
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    return pil_resize(hr[None], size, "bicubic")[0]
