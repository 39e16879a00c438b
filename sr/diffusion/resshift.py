"""ResShift residual-shifting diffusion (the ``GaussianDiffusion`` of ResShift / SinSR / DifIISR / UPSR).

Forward process ``x_t = x_0 + eta_t (y - x_0) + kappa sqrt(eta_t) [un] eps``; the network predicts
x_0 (``predict_type: xstart``) from the input-scaled state. Matching the official code, every
per-step float64 coefficient is indexed and cast to float32 *before* it multiplies a tensor
(``_extract_into_tensor``), and the deterministic DDIM update derives its k/m/j coefficients from
float32 copies of ``eta_{t-1} eta_t`` and ``eta_{t-1} / eta_t``.

Two variants, selected by constructor arguments rather than subclasses:

* latent (ResShift v1/v2/v3, SinSR, DifIISR, HF-Diff): input scaling ``x / sqrt(eta_t kappa^2 + 1)``;
  the first stage is the VQ-f4 autoencoder (:class:`VQFirstStage`).
* UPSR (pixel space): input scaling ``x / sqrt(0.3 eta_t kappa^2 + 0.25)``; the state is
  PixelUnshuffle(4) of the RGB image (:class:`PixelUnshuffleFirstStage`), the network returns full-size
  RGB that is unshuffled back (``model_output_unshuffle=4``), and an uncertainty map ``un`` scales the
  forward noise, the prior noise and the posterior standard deviation.

The model is any callable ``model(x_scaled, t, **model_kwargs) -> prediction``; networks live in
``sr.nn``, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from sr.diffusion.schedule import ResShiftSchedule, ScheduleConfig

Model = Callable[..., torch.Tensor]
InputScaling = Literal["latent", "upsr"]
SampleMode = Literal["one_step", "ddim", "stochastic"]


def uncertainty_map(g_y: torch.Tensor, bicubic_y: torch.Tensor, psi_max: float = 0.1, b: float = 0.4) -> torch.Tensor:
    """UPSR's per-pixel noise weight: ``b + (1-b) * clamp(|g(y) - bicubic(y)| / 2, 0, psi_max) / psi_max``.

    Both inputs are [-1, 1] images at full resolution; psi_max 0.1 and b 0.4 are the values of
    both shipped UPSR configs (``diffusion.un`` / ``diffusion.min_noise``).
    """
    diff = (g_y - bicubic_y) / 2
    un = torch.clamp(diff.abs(), 0, psi_max) / psi_max
    return b + (1 - b) * un


class VQFirstStage:
    """Latent first stage: ``encode`` = VQ encoder x scale_factor, ``decode`` = VQ decode (quantised)."""

    def __init__(self, vq: torch.nn.Module, scale_factor: float = 1.0):
        self.vq, self.scale_factor = vq, scale_factor

    def _dtype(self) -> torch.dtype:
        return next(self.vq.parameters()).dtype

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return (self.vq.encode(image.type(self._dtype())) * self.scale_factor).type(image.dtype)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vq.decode((1 / self.scale_factor * latent).type(self._dtype())).type(latent.dtype)


class PixelUnshuffleFirstStage:
    """UPSR's pixel-space "first stage": PixelUnshuffle(factor) in, PixelShuffle(factor) out."""

    def __init__(self, factor: int = 4):
        self.factor = factor

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(image, self.factor)

    def decode(self, state: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(state, self.factor)


class ResShiftDiffusion:
    """Schedule-dependent maths of the ResShift family; stateless apart from the float64 tables."""

    def __init__(
        self,
        schedule: ResShiftSchedule,
        *,
        input_scaling: InputScaling = "latent",
        model_output_unshuffle: int = 1,
        sf: int = 4,
    ):
        if input_scaling not in ("latent", "upsr"):
            raise ValueError(f"input_scaling must be 'latent' or 'upsr', got {input_scaling!r}")
        self.schedule = schedule
        self.kappa = schedule.kappa
        self.input_scaling = input_scaling
        self.model_output_unshuffle = model_output_unshuffle
        self.sf = sf
        s = schedule
        self._kappa_sqrt_etas = s.sqrt_etas * self.kappa
        self._ddim_prod = s.etas_prev * s.etas
        self._ddim_ratio = s.etas_prev / s.etas

    @classmethod
    def from_config(cls, cfg: ScheduleConfig, **kwargs) -> ResShiftDiffusion:
        return cls(ResShiftSchedule.from_config(cfg), **kwargs)

    @property
    def num_timesteps(self) -> int:
        return self.schedule.num_timesteps

    # -- coefficient access ------------------------------------------------------------------
    @staticmethod
    def coef(arr: np.ndarray, t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """``arr[t]`` as float32, broadcast to ``shape`` (upstream ``_extract_into_tensor``)."""
        res = torch.from_numpy(arr).to(device=t.device)[t].float()
        return res.view(-1, *([1] * (len(shape) - 1))).expand(shape)

    def _t_last(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), self.num_timesteps - 1, dtype=torch.long, device=x.device)

    # -- forward process ---------------------------------------------------------------------
    def q_sample(
        self,
        x_start: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        un: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample q(x_t | x_0, y)."""
        noise = noise if un is None else un * noise
        eta = self.coef(self.schedule.etas, t, x_start.shape)
        return eta * (y - x_start) + x_start + self.coef(self._kappa_sqrt_etas, t, x_start.shape) * noise

    def prior_sample(self, y: torch.Tensor, noise: torch.Tensor, un: torch.Tensor | None = None) -> torch.Tensor:
        """x_T = y + kappa sqrt(eta_{T-1}) [un] noise."""
        noise = noise if un is None else un * noise
        return y + self.coef(self._kappa_sqrt_etas, self._t_last(y), y.shape) * noise

    def scale_input(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Normalise the state before the network call (float32 divisor as upstream computes it)."""
        eta = self.coef(self.schedule.etas, t, x.shape)
        if self.input_scaling == "latent":
            return x / torch.sqrt(eta * self.kappa**2 + 1)
        return x / torch.sqrt(eta * self.kappa**2 * 0.3 + 0.5**2)

    # -- reverse process ---------------------------------------------------------------------
    def q_posterior_mean_variance(
        self, x_start: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, un: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and (clipped) log-variance of q(x_{t-1} | x_t, x_0); UPSR scales by un^2."""
        s, shape = self.schedule, x_t.shape
        mean = self.coef(s.posterior_mean_coef1, t, shape) * x_t + self.coef(s.posterior_mean_coef2, t, shape) * x_start
        variance = self.coef(s.posterior_variance, t, shape)
        log_variance = self.coef(s.posterior_log_variance_clipped, t, shape)
        if un is not None:
            variance = variance * un**2
            log_variance = log_variance + 2 * torch.log(un)
        return mean, variance, log_variance

    def p_mean_variance(
        self,
        model: Model,
        x_t: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        clip_denoised: bool = False,
        model_kwargs: dict | None = None,
        un: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One network call; returns ``pred_xstart`` and the posterior ``mean`` / ``variance`` /
        ``log_variance`` built on it (the network predicts x_0)."""
        out = model(self.scale_input(x_t, t), t, **(model_kwargs or {}))
        if self.model_output_unshuffle > 1:
            out = F.pixel_unshuffle(out, self.model_output_unshuffle)
        pred_xstart = out.clamp(-1, 1) if clip_denoised else out
        mean, variance, log_variance = self.q_posterior_mean_variance(pred_xstart, x_t, t, un)
        return {"mean": mean, "variance": variance, "log_variance": log_variance, "pred_xstart": pred_xstart}

    def ddim_coefficients(self, t: torch.Tensor, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """float32 (k, m, j) of x_{t-1} = k x0 + m x_t + j y, derived as upstream does from float32
        copies of eta_{t-1}, eta_{t-1} eta_t and eta_{t-1}/eta_t (k=1, m=j=0 at t=0)."""
        etas_prev = self.coef(self.schedule.etas_prev, t, shape)
        root_prod = torch.sqrt(self.coef(self._ddim_prod, t, shape))
        m = torch.sqrt(self.coef(self._ddim_ratio, t, shape))
        return 1 - etas_prev + root_prod - m, m, etas_prev - root_prod

    def ddim_sample(
        self,
        model: Model,
        x_t: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        clip_denoised: bool = False,
        model_kwargs: dict | None = None,
        un: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Deterministic (eta 0) step of DifIISR / SinSR / UPSR."""
        out = self.p_mean_variance(model, x_t, y, t, clip_denoised, model_kwargs, un)
        k, m, j = self.ddim_coefficients(t, x_t.shape)
        out["sample"] = out["pred_xstart"] * k + m * x_t + j * y
        return out

    def p_sample(
        self,
        model: Model,
        x_t: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        clip_denoised: bool = False,
        model_kwargs: dict | None = None,
        un: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Stochastic ancestral step (ResShift's own sampler): mean + [t>0] exp(logvar/2) noise."""
        out = self.p_mean_variance(model, x_t, y, t, clip_denoised, model_kwargs, un)
        nonzero = (t != 0).float().view(-1, *([1] * (x_t.ndim - 1)))
        out["sample"] = out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise
        return out

    def sample_loop(
        self,
        model: Model,
        x_T: torch.Tensor,
        y: torch.Tensor,
        mode: SampleMode = "one_step",
        model_kwargs: dict | None = None,
        un: torch.Tensor | None = None,
        clip_denoised: bool = False,
        generator: torch.Generator | None = None,
        trace: list[dict[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Run the reverse process from x_T over t = T-1..0 and return the final state.

        ``one_step`` stops after the first call and returns its x_0 prediction (SinSR / DifIISR
        inference); ``ddim`` applies the deterministic k/m/j update; ``stochastic`` draws the step
        noise from ``generator``. ``trace``, if given, collects ``{x_t, t, pred_xstart}`` per step.
        """
        if mode not in ("one_step", "ddim", "stochastic"):
            raise ValueError(f"mode must be 'one_step', 'ddim' or 'stochastic', got {mode!r}")
        x = x_T
        for step in reversed(range(self.num_timesteps)):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            if mode == "stochastic":
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                out = self.p_sample(model, x, y, t, noise, clip_denoised, model_kwargs, un)
            else:
                out = self.ddim_sample(model, x, y, t, clip_denoised, model_kwargs, un)
            if trace is not None:
                trace.append({"x_t": x, "t": t, "pred_xstart": out["pred_xstart"]})
            if mode == "one_step":
                return out["pred_xstart"]
            x = out["sample"]
        return x
