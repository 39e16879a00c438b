"""Optics: what happens to the scene before the focal plane samples it (operators on the HR frame)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def blur(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int, sigma: float) -> np.ndarray:
    """Gaussian PSF of standard deviation ``sigma`` *LR* pixels (``sigma * scale`` HR pixels), reflecting borders;
    the same physical blur at every scale."""
    return gaussian_filter(x, sigma=(0.0, sigma * scale, sigma * scale), mode="reflect", truncate=4.0)


def shading(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int, amplitude: float) -> np.ndarray:
    """Low-frequency vignetting: ``x * (1 - amplitude * r**2)`` with ``r`` the distance from an optical centre
    (drawn within 10 % of the frame size from the middle) normalised so the farthest corner has r = 1."""
    h, w = x.shape[-2:]
    cy, cx = (h - 1) / 2 + rng.uniform(-0.1, 0.1) * h, (w - 1) / 2 + rng.uniform(-0.1, 0.1) * w
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    return x * (1.0 - amplitude * r2 / r2.max())[None]
