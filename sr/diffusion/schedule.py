"""Exponential residual-shifting schedule of ResShift and its descendants, in float64.

``sqrt_eta_t = s0 * b ** ((t / (T-1)) ** power * (T-1))`` with ``b = (etas_end / s0) ** (1/(T-1))``
and ``s0 = min(min_noise_level / kappa, min_noise_level[, sqrt(0.001)])``. The ``sqrt(0.001)`` cap
is in the conference-era code (ResShift v1/v2, SinSR, DifIISR) and UPSR; ResShift HEAD (v3 journal)
dropped it. The arithmetic is done in the same order as upstream so the arrays agree to the last
bit or two with the official objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScheduleConfig:
    """Hyper-parameters of one released schedule (the ``diffusion.params`` of the upstream YAML)."""

    steps: int
    kappa: float
    min_noise_level: float
    power: float
    etas_end: float = 0.99
    sqrt_eta_cap: bool = True


# The released configurations (see the reference kit's schedule_*.json).
DIFIISR_T15 = ScheduleConfig(steps=15, kappa=2.0, min_noise_level=0.04, power=0.3)  # = SinSR, ResShift v1/v2
RESSHIFT_V3_T4 = ScheduleConfig(steps=4, kappa=2.0, min_noise_level=0.2, power=0.3, sqrt_eta_cap=False)
UPSR_T5 = ScheduleConfig(steps=5, kappa=2.5, min_noise_level=0.2, power=0.2)


def exponential_sqrt_etas(cfg: ScheduleConfig) -> np.ndarray:
    """sqrt(eta_t) for t = 0..T-1 (float64)."""
    start = min(cfg.min_noise_level / cfg.kappa, cfg.min_noise_level)
    if cfg.sqrt_eta_cap:
        start = min(start, math.sqrt(0.001))
    t = cfg.steps
    increaser = math.exp(1 / (t - 1) * math.log(cfg.etas_end / start))
    base = np.ones([t]) * increaser
    exponent = np.linspace(0, 1, t, endpoint=True) ** cfg.power * (t - 1)
    return np.power(base, exponent) * start


@dataclass(frozen=True)
class ResShiftSchedule:
    """All per-step float64 tables the ResShift diffusion uses, indexed by t = 0..T-1."""

    kappa: float
    sqrt_etas: np.ndarray
    etas: np.ndarray
    etas_prev: np.ndarray
    alpha: np.ndarray
    posterior_mean_coef1: np.ndarray
    posterior_mean_coef2: np.ndarray
    posterior_variance: np.ndarray
    posterior_variance_clipped: np.ndarray
    posterior_log_variance_clipped: np.ndarray

    @property
    def num_timesteps(self) -> int:
        return len(self.etas)

    @classmethod
    def from_config(cls, cfg: ScheduleConfig) -> ResShiftSchedule:
        return cls.from_sqrt_etas(exponential_sqrt_etas(cfg), cfg.kappa)

    @classmethod
    def from_sqrt_etas(cls, sqrt_etas: np.ndarray, kappa: float) -> ResShiftSchedule:
        etas = sqrt_etas**2
        etas_prev = np.append(0.0, etas[:-1])
        alpha = etas - etas_prev
        post_var = kappa**2 * etas_prev / etas * alpha
        post_var_clipped = np.append(post_var[1], post_var[1:])
        return cls(
            kappa=kappa,
            sqrt_etas=sqrt_etas,
            etas=etas,
            etas_prev=etas_prev,
            alpha=alpha,
            posterior_mean_coef1=etas_prev / etas,
            posterior_mean_coef2=alpha / etas,
            posterior_variance=post_var,
            posterior_variance_clipped=post_var_clipped,
            posterior_log_variance_clipped=np.log(post_var_clipped),
        )

    def ddim_coefficients(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float64 (k, m, j) of the eta-0 update x_{t-1} = k x0 + m x_t + j y (reference only; the
        sampler derives float32 coefficients the way the official code does)."""
        m = np.sqrt(self.etas_prev / self.etas)
        root = np.sqrt(self.etas_prev * self.etas)
        return 1 - self.etas_prev + root - m, m, self.etas_prev - root
