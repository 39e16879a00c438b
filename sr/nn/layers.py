"""Small building blocks shared by the ResShift-family networks.

Numerically these follow the official ResShift / SinSR / DifIISR ``models/basic_ops.py`` and
``models/unet.py``: GroupNorm with 32 groups evaluated in float32, sinusoidal timestep embedding
with the cosines first, zero-initialised output convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm that always computes in float32 and casts back (stable under fp16/bf16)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class NormSiLU(nn.SiLU):
    """The SiLU right after a normalisation layer: without autograd (inference) it overwrites its input,
    a fresh normalisation output that nothing else reads, so no second full-size tensor is allocated.
    Same kernel either way, so the same bits; with autograd it is ``nn.SiLU``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x, inplace=not torch.is_grad_enabled())


def normalization(channels: int, eps: float = 1e-5) -> GroupNorm32:
    """The UNet's normalisation layer: 32 groups, affine, float32 compute."""
    return GroupNorm32(32, channels, eps=eps)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module`` (the official init of ResBlock output convolutions)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[cos(t f_i), sin(t f_i)]`` with ``f_i = max_period^(-i/half)``.

    ``timesteps`` are the integer step indices 0..T-1 (no rescaling), as all three upstream
    repositories feed them. Odd ``dim`` is padded with one zero column, as upstream does.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb
