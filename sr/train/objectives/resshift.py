"""ResShift's objective: x0-MSE in the diffusion state space (latent, or pixel-unshuffled) at a
uniformly drawn t, optionally + LPIPS on the decoded prediction (ResShift v3 journal trainer,
loss_coef [1.0 mse, 1.0 lpips]). An optional ``guidance`` (see :mod:`sr.guidance`) is applied to the
x0 prediction when ``guidance_start <= step < guidance_end``: this is how DifIISR extends it."""

from __future__ import annotations

from typing import Any

import torch

from sr.train.objectives.base import Objective, ObjectiveContext, mse, register


@register("resshift")
class ResShiftObjective(Objective):
    @classmethod
    def sampling_modes(cls, options):
        """Uniform t trains every step of the reverse chain (sampled in T steps); ``timesteps: last`` trains the
        t=T-1 call alone (sampled in one step)."""
        return ("one_step",) if options.get("timesteps") == "last" else cls.sampling

    def __init__(
        self,
        ctx: ObjectiveContext,
        lpips_weight: float = 0.0,
        guidance: dict[str, Any] | None = None,
        guidance_start: int = 0,
        guidance_end: int | None = None,
        timesteps: str = "uniform",
    ):
        super().__init__(ctx)
        self.lpips_weight = float(lpips_weight)
        self.lpips = None
        if self.lpips_weight > 0:
            from sr.guidance import LPIPSLoss

            self.lpips = LPIPSLoss(weights_dir=ctx.weights_dir, random_weights=ctx.random_weights).to(ctx.device)
        self.set_guidance(guidance, guidance_start, guidance_end)
        if timesteps not in ("uniform", "last"):
            raise ValueError("timesteps must be 'uniform' or 'last'")
        self.timesteps = timesteps

    @property
    def flags(self):
        own = self.lpips.flags if self.lpips is not None else ()
        return tuple(sorted(set(super().flags) | set(own)))

    def forward(self, batch, step):
        d, lr, hr = self.ctx.diffusion, batch["lr"], batch["hr"]
        z_y, z0 = self.encode(self.upsample(lr)), self.encode(hr)
        b = z0.shape[0]
        if self.timesteps == "uniform":
            t = torch.randint(0, d.num_timesteps, (b,), device=z0.device)
        else:
            t = self.t_full(b, d.num_timesteps - 1)
        noise = torch.randn_like(z0)
        x_t = d.q_sample(z0, z_y, t, noise)
        guided = self.guided(step)
        if guided and self.guidance.needs_input_grad:
            x_t.requires_grad_(True)
        pred = self.net(self.ctx.model, x_t, t, lr)
        logs: dict[str, float] = {}
        # what the x0-MSE sees; with inject in the target form it is not an image estimate
        compared, extra = self.guide(x_t, t, pred, hr, logs) if guided else (pred, pred.new_zeros(()))
        loss = mse(compared, z0)
        logs["mse"] = float(loss.detach())
        if self.lpips is not None:  # on the network's own prediction, never on the guidance-shifted one
            lp = self.lpips(self.decode(pred) * 0.5 + 0.5, hr * 0.5 + 0.5).mean()
            logs["lpips"] = float(lp.detach())
            loss = loss + self.lpips_weight * lp
        return loss + extra, logs
