"""UPSR (CVPR 2025; UPSTREAM_FACTS 4.3): pixel-space ResShift with uncertainty-weighted noise.

* y_bic = bicubic x``scale`` of the LR; g(y) = an SR prior (any registered SR method,
  ``prior_method``; UPSR uses a retrained ATD, the CPU demo uses ``lanczos``), both in [-1, 1];
* un = b_u + (1 - b_u) clip(|g(y) - y_bic| / 2, 0, psi_max) / psi_max (:func:`sr.diffusion.uncertainty_map`);
  shipped defaults psi_max 0.1 / b_u 0.4 (both official configs), the paper states psi_max 0.05;
* x_t = x_0 + eta_t (y_bic - x_0) + kappa sqrt(eta_t) un eps in the PixelUnshuffle(scale) state, the
  network conditioned on PixelUnshuffle(cat[g(y), y_bic]) with UPSR's input scaling;
* loss = MSE(pred, x_0) + ``lpips_weight`` LPIPS(decoded pred, HR) (UPSR: 0.5, LPIPS-VGG).
The run's model config must use ``input_scaling: upsr`` and ``in_channels = 16*3 + 16*6``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sr.sampler import UPSRConditioning, upsr_condition
from sr.train.objectives.base import Objective, ObjectiveContext, mse, register


@register("upsr")
class UPSRObjective(Objective):
    def __init__(
        self,
        ctx: ObjectiveContext,
        prior_method: str = "lanczos",
        psi_max: float = 0.1,
        b_u: float = 0.4,
        lpips_weight: float = 0.0,
    ):
        super().__init__(ctx)
        from sr.registry import load_method

        # g(y) on the run's device, its weights from the run's weights directory (UPSR's prior: atd_real)
        self.prior = load_method(
            prior_method, device=str(ctx.device), weights_dir=ctx.weights_dir, random_weights=ctx.random_weights
        )
        self.psi_max, self.b_u, self.lpips_weight = float(psi_max), float(b_u), float(lpips_weight)
        self.lpips = None
        if self.lpips_weight > 0:
            from sr.guidance import LPIPSLoss

            self.lpips = LPIPSLoss(weights_dir=ctx.weights_dir, random_weights=ctx.random_weights).to(ctx.device)

    @property
    def flags(self):
        return tuple(dict.fromkeys([*self.prior.flags, *(self.lpips.flags if self.lpips is not None else ())]))

    def sampler_options(self) -> dict:
        """Validation samples with g(y), the uncertainty-scaled noise and clamped x0 predictions, as trained."""
        return {"upsr": UPSRConditioning(self.prior, self.ctx.scale, self.psi_max, self.b_u), "clip_denoised": True}

    def forward(self, batch, step):
        d, lr, hr = self.ctx.diffusion, batch["lr"], batch["hr"]
        with torch.no_grad():
            g = self.prior.upscale((lr * 0.5 + 0.5).to(self.prior.device)).to(lr.device) * 2 - 1
        y_bic = self.upsample(lr)
        cond, un = upsr_condition(g, y_bic, self.ctx.scale, self.psi_max, self.b_u)
        z0, z_y, un_z = self.encode(hr), self.encode(y_bic), self.encode(un)
        t = torch.randint(0, d.num_timesteps, (z0.shape[0],), device=z0.device)
        x_t = d.q_sample(z0, z_y, t, torch.randn_like(z0), un=un_z)
        pred = self.net(self.ctx.model, x_t, t, cond)
        if d.model_output_unshuffle > 1:  # UPSR's full-resolution head: into the state (MSE as the official's)
            pred = F.pixel_unshuffle(pred, d.model_output_unshuffle)
        loss = mse(pred, z0)
        logs = {"mse": float(loss.detach()), "un_mean": float(un.mean())}
        if self.lpips is not None:
            lp = self.lpips(self.decode(pred) * 0.5 + 0.5, hr * 0.5 + 0.5).mean()
            logs["lpips"] = float(lp.detach())
            loss = loss + self.lpips_weight * lp
        return loss, logs
