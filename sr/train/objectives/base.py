"""What every training objective shares: the context it works in and the registry of objectives.

An objective is built as ``cls(ctx, **options)`` and called as ``objective(batch, step) -> (loss,
logs)``; ``batch`` holds ``lr`` / ``hr`` in [-1, 1]. The trainer owns the optimiser, EMA, AMP and
checkpoints; objectives own only the maths of their loss (diffusion maths comes from
:mod:`sr.diffusion`, guidance from :mod:`sr.guidance`).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sr import plugins
from sr.diffusion import ResShiftDiffusion
from sr.errors import ConfigError, check_keys
from sr.guidance import Guidance, GuidanceLoss
from sr.registry import Registry

#: training objectives by ``objective.kind``: the Objective subclasses of this package's modules
OBJECTIVES = Registry("objective", locations=("sr.train.objectives",), name_attr="kind", plugin_kind="objective")
#: class decorator: ``@register("sinsr")`` makes an Objective subclass ``objective.kind: sinsr``
register = functools.partial(plugins.register, "objective")  # sr.plugins: one registration for every kind


@dataclass
class ObjectiveContext:
    model: nn.Module  # trainable network (possibly DDP-wrapped)
    raw_model: nn.Module  # the unwrapped network (for copies, e.g. a teacher)
    diffusion: ResShiftDiffusion
    first_stage: nn.Module  # frozen, encode/decode
    device: torch.device
    scale: int = 4
    weights_dir: str | None = None
    random_weights: bool = False
    build_network: Any = None  # () -> a fresh network of the run's architecture
    extra: dict[str, Any] = field(default_factory=dict)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over C,H,W then over the batch (upstream ``mean_flat`` then mean)."""
    return (a.float() - b.float()).pow(2).flatten(1).mean(dim=1).mean()


def build_guidance(spec: dict[str, Any] | None, ctx: ObjectiveContext) -> Guidance | None:
    """``{terms: [...], rho, schedule, second_order, form, wrt}`` -> Guidance (None when no terms)."""
    if not spec:
        return None
    spec = dict(spec)
    check_keys("objective.guidance", spec, {"terms", "rho", "schedule", "second_order", "form", "wrt"})
    terms = spec.pop("terms", None) or []
    if not terms:
        return None
    loss = GuidanceLoss(terms, weights_dir=ctx.weights_dir, random_weights=ctx.random_weights).to(ctx.device)
    return Guidance(loss, **spec)


class Objective(nn.Module, ABC):
    kind: ClassVar[str] = ""
    #: the sampler steps modes (``steps_mode`` of sr.sampler) that sample a network as this objective trains it
    sampling: ClassVar[tuple[str, ...]] = ("ddim", "stochastic")

    @classmethod
    def sampling_modes(cls, options: dict[str, Any]) -> tuple[str, ...]:
        """The steps modes that sample what this objective, with ``options`` (its config keys), trains."""
        return cls.sampling

    def __init__(self, ctx: ObjectiveContext):
        super().__init__()
        self.ctx = ctx
        self.guidance: Guidance | None = None
        self.guidance_start, self.guidance_end = 0, None

    def set_guidance(self, spec: dict[str, Any] | None, start: int = 0, end: int | None = None) -> None:
        """Guidance applied to the x0 prediction when ``start <= step < end`` (``end`` None: to the last step)."""
        self.guidance = build_guidance(spec, self.ctx)
        self.guidance_start, self.guidance_end = int(start), end

    def guided(self, step: int) -> bool:
        return (
            self.guidance is not None
            and step >= self.guidance_start
            and (self.guidance_end is None or step < self.guidance_end)
        )

    def guide(
        self, x_t: torch.Tensor, t: torch.Tensor, pred: torch.Tensor, hr: torch.Tensor, logs: dict[str, float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the guidance: (what the x0-MSE compares with the target, the sum-mode loss)."""
        res = self.guidance(self.ctx.diffusion, x_t, t, pred, self.decode, hr)
        logs.update(res.logs)
        return res.pred_x0, res.extra_loss

    @property
    def flags(self) -> tuple[str, ...]:
        return self.guidance.flags if self.guidance is not None else ()

    def sampler_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`sr.sampler.ResShiftSampler` that sample a model trained this way."""
        return {}

    # -- shared helpers -----------------------------------------------------------------------
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ctx.first_stage.encode(image)

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        """Differentiable decode to an image in [-1, 1] (VQ: straight-through quantiser)."""
        return self.ctx.first_stage.decode(state)

    def upsample(self, lr: torch.Tensor) -> torch.Tensor:
        return F.interpolate(lr, scale_factor=self.ctx.scale, mode="bicubic")

    def net(
        self, model, x: torch.Tensor, t: torch.Tensor, lq: torch.Tensor, scale_t: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x0 prediction ``model(scale_input(x, scale_t or t), t, lq=lq)``."""
        return model(self.ctx.diffusion.scale_input(x, t if scale_t is None else scale_t), t, lq=lq)

    def t_full(self, b: int, value: int) -> torch.Tensor:
        return torch.full((b,), value, dtype=torch.long, device=self.ctx.device)

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of one batch at ``step`` and the scalars to log."""


def build_objective(spec: dict[str, Any], ctx: ObjectiveContext) -> Objective:
    spec = dict(spec)
    kind = spec.pop("kind")
    try:
        return OBJECTIVES.build(kind, spec, fixed={"ctx": ctx})
    except TypeError as exc:
        raise ConfigError(f"objective {kind!r}: {exc}") from None
