"""Guidance-loss terms by name (a registry, not an if/else chain) and their weighted combination.

A term is configured as ``{kind: fft, weight: 1.0, mode: inject, ...options}``; ``kind`` is one of
:data:`TERMS`; ``mode`` is ``inject`` (gradient injection) or ``sum`` (added to the loss). Options
``weights_dir`` / ``random_weights`` are passed to terms with feature networks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from sr import plugins
from sr.config import accepted_options
from sr.errors import ConfigError
from sr.guidance.perceptual import LPIPSLoss, SAMLoss, SobelEdgeLoss, VGGLoss
from sr.guidance.visual import FFTLoss, MSELoss, SSIMLoss
from sr.registry import Registry

#: guidance terms by ``kind``; metadata ``group``: visual (pixel statistics) or perceptual (feature networks)
TERMS = Registry("guidance term", plugin_kind="guidance-term")
for _kind, _group, _cls in (
    ("fft", "visual", FFTLoss),
    ("ssim", "visual", SSIMLoss),
    ("mse", "visual", MSELoss),
    ("vgg", "perceptual", VGGLoss),
    ("sam", "perceptual", SAMLoss),
    ("lpips", "perceptual", LPIPSLoss),
    ("edge", "perceptual", SobelEdgeLoss),
):
    plugins.register("guidance-term", _kind, _cls, group=_group)
MODES = ("inject", "sum")
_COMMON = ("weights_dir", "random_weights")


def build_term(kind: str, **options: Any) -> nn.Module:
    """Term ``kind`` with its options; ``weights_dir`` / ``random_weights`` reach only terms that take them."""
    accepted = accepted_options(TERMS.get(kind).factory)
    common = {k: options.pop(k) for k in _COMMON if k in options}
    return TERMS.build(kind, options, untyped={k: v for k, v in common.items() if k in accepted})


class GuidanceLoss(nn.Module):
    """sum_i w_i l_i(pred, target) over the terms of a mode; per-sample values [B]."""

    def __init__(self, terms: Iterable[Mapping[str, Any]], weights_dir=None, random_weights: bool = False):
        super().__init__()
        self.kinds, self.weights, self.modes = [], [], []
        self.terms = nn.ModuleList()
        for spec in terms:
            spec = dict(spec)
            kind = spec.pop("kind", None)
            if kind is None:
                raise ConfigError(f"guidance term {spec} needs a 'kind' ({', '.join(TERMS.names())})")
            weight = float(spec.pop("weight", 1.0))
            mode = spec.pop("mode", "inject")
            if mode not in MODES:
                raise ConfigError(f"guidance term {kind!r}: mode must be one of {MODES}, got {mode!r}")
            self.terms.append(build_term(kind, weights_dir=weights_dir, random_weights=random_weights, **spec))
            self.kinds.append(kind)
            self.weights.append(weight)
            self.modes.append(mode)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(sorted({f for t in self.terms for f in getattr(t, "flags", ())}))

    def has(self, mode: str) -> bool:
        return mode in self.modes

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        total = pred.new_zeros(pred.shape[0], dtype=torch.float64 if pred.dtype == torch.float64 else torch.float32)
        for term, w, m in zip(self.terms, self.weights, self.modes):
            if mode is None or m == mode:
                total = total + w * term(pred, target)
        return total

    def per_term(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted per-sample value of every term (for validation logs)."""
        return {k: t(pred, target) for k, t in zip(self.kinds, self.terms)}
