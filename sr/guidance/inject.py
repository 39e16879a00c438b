"""Loss-gradient guidance (DifIISR section 4.1, supplementary Algorithm 1) for ResShift-family training.

A guidance loss L_g(x0_hat) = sum_i w_i l_i(M(decode(x0_hat)), M(x_HR)) is applied either as ``inject`` (the
paper's nabla-L: its gradient, w.r.t. x_t or the x0 prediction (``wrt``), corrects the x0-MSE with the scale c_t of
eq. 9 mapped to ResShift's x0 prediction (``schedule``), on the target or the prediction side (``form``)) or as
``sum`` (the paper's Sigma-L: added to the loss). ``second_order`` keeps the gradient's graph. The derivation of
c_t, of the ``target`` form and of ``wrt: x0``, and the demo measurements behind the configs' choices, are in
docs/guidance.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sr.guidance.terms import GuidanceLoss

FORMS = ("target", "literal")
WRT = ("x_t", "x0")
Decode = Callable[[torch.Tensor], torch.Tensor]  # diffusion state -> image in [-1, 1]


def injection_scale(diffusion, t: torch.Tensor, shape: torch.Size, schedule: str = "eps") -> torch.Tensor:
    """Per-sample factor c_t multiplying rho * grad in ``x0' = x0 - rho c_t grad`` (see docs/guidance.md)."""
    if schedule == "eps":
        eta = diffusion.coef(diffusion.schedule.etas, t, shape)
        return diffusion.kappa**2 * eta / (1 - eta)
    if schedule == "x0":
        return torch.ones(shape, device=t.device)
    raise ValueError(f"guidance schedule must be 'eps' or 'x0', got {schedule!r}")


def guidance_gradient(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    wrt: torch.Tensor,
    pred_x0: torch.Tensor,
    second_order: bool = False,
) -> torch.Tensor:
    """``grad_{wrt} sum_b loss_fn(pred_x0)[b]``; ``wrt`` is x_t (``pred_x0`` computed from it) or ``pred_x0``.

    Summing over the batch keeps each sample's gradient independent of the batch size.
    """
    loss = loss_fn(pred_x0).sum()
    if not loss.requires_grad:
        return torch.zeros_like(wrt)
    (grad,) = torch.autograd.grad(loss, wrt, create_graph=second_order, retain_graph=True, allow_unused=True)
    return torch.zeros_like(wrt) if grad is None else grad


@dataclass
class GuidanceResult:
    pred_x0: torch.Tensor  # what the x0-MSE compares with x0 (see ``form``); the prediction itself without inject
    extra_loss: torch.Tensor  # sum-mode terms (scalar, batch mean); 0 when none
    logs: dict[str, float]


class Guidance:
    """Applies a :class:`GuidanceLoss` to a ResShift prediction in inject and/or sum mode."""

    def __init__(
        self,
        loss: GuidanceLoss,
        rho: float = 1.0,
        schedule: str = "eps",
        second_order: bool = False,
        form: str = "target",
        wrt: str = "x_t",
    ):
        if form not in FORMS:
            raise ValueError(f"guidance form must be one of {FORMS}, got {form!r}")
        if wrt not in WRT:
            raise ValueError(f"guidance wrt must be one of {WRT}, got {wrt!r}")
        self.loss, self.rho, self.schedule, self.second_order = loss, float(rho), schedule, bool(second_order)
        self.form, self.wrt = form, wrt

    @property
    def flags(self) -> tuple[str, ...]:
        return self.loss.flags

    @property
    def needs_input_grad(self) -> bool:
        """Whether the objective must call the network on an x_t that requires grad."""
        return self.loss.has("inject") and self.wrt == "x_t"

    def __call__(
        self, diffusion, x_t: torch.Tensor, t: torch.Tensor, pred_x0: torch.Tensor, decode: Decode, hr_pm1: torch.Tensor
    ) -> GuidanceResult:
        """For inject with ``wrt: x_t``, ``x_t`` must require grad and ``pred_x0`` be computed from it."""
        target = (hr_pm1.detach() * 0.5 + 0.5).to(torch.float64 if pred_x0.dtype == torch.float64 else torch.float32)
        logs: dict[str, float] = {}
        pred = pred_x0
        if self.loss.has("inject"):
            if self.wrt == "x_t" and not x_t.requires_grad:
                raise RuntimeError("inject guidance needs x_t.requires_grad_() before the model call")

            def fn(p):
                return self.loss(decode(p) * 0.5 + 0.5, target, mode="inject")

            grad = guidance_gradient(fn, x_t if self.wrt == "x_t" else pred_x0, pred_x0, self.second_order)
            scale = injection_scale(diffusion, t, pred_x0.shape, self.schedule)
            if self.form == "target":
                # loss ||pred + rho c grad - x0||^2 = ||pred - (x0 - rho c grad)||^2: the guided target
                pred = pred_x0 + self.rho * scale * grad
            else:  # "literal": Algorithm 1 eq. 12 as printed (see module doc: trains AGAINST the guidance)
                pred = pred_x0 - self.rho * scale * grad
            logs["guid_grad_rms"] = float(grad.detach().pow(2).mean().sqrt())
        extra = pred_x0.new_zeros(())
        if self.loss.has("sum"):
            extra = self.loss(decode(pred_x0) * 0.5 + 0.5, target, mode="sum").mean()
            logs["guid_sum_loss"] = float(extra.detach())
        return GuidanceResult(pred, extra, logs)
