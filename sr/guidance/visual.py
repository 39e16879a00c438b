"""Visual guidance losses of DifIISR (paper eq. 10-11) and the supplementary Table 2 variants.

All losses take images in [0, 1] of shape [B, C, H, W] and return one value per sample ([B]);
callers reduce over the batch. They are differentiable in their first argument.

``fft``  (the paper's "infrared thermal spectrum distribution regulation"): 2-D FFT of each channel,
         shift the zero frequency to the centre, magnitude spectrum compressed as ``log(1 + |F|)``,
         normalised per sample and channel to zero mean / unit variance, then the MSE between the two
         normalised spectra. The paper motivates the normalisation as "matching the frequency
         distribution patterns rather than absolute intensity differences". ``log(1+|F|)`` alone is
         *not* exactly invariant to a global intensity scale (``log(1+a|F|)`` is not an affine map of
         ``log(1+|F|)``), so by default (``intensity_norm="rms"``) each image is first divided by its
         root-mean-square intensity, which makes the loss exactly invariant to ``x -> a x`` (a > 0).
         ``intensity_norm="none"`` gives the literal formula of eq. 11. The FFT is unnormalised
         (eq. 10's plain sum), in float32 even under autocast.
``ssim`` 1 - SSIM (Gaussian window 11, sigma 1.5, data range 1; per-channel, averaged).
``mse``  pixel MSE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-8


def _up(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (float64 stays float64, for gradient checks)."""
    return x if x.dtype == torch.float64 else x.float()


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def normalized_log_spectrum(x: torch.Tensor, intensity_norm: str = "rms") -> torch.Tensor:
    """N(log(1 + |fftshift(FFT(x))|)) per sample and channel; x is [B, C, H, W]."""
    x = _up(x)
    if intensity_norm == "rms":
        x = x / (x.pow(2).mean(dim=(-2, -1), keepdim=True) + _EPS).sqrt()
    elif intensity_norm != "none":
        raise ValueError(f"intensity_norm must be 'rms' or 'none', got {intensity_norm!r}")
    spec = torch.fft.fftshift(torch.fft.fft2(x, dim=(-2, -1)), dim=(-2, -1))
    mag = torch.log1p(spec.abs())
    mean = mag.mean(dim=(-2, -1), keepdim=True)
    std = (mag.var(dim=(-2, -1), keepdim=True, unbiased=False) + _EPS).sqrt()
    return (mag - mean) / std


class FFTLoss(nn.Module):
    """The paper's visual loss (eq. 11); see the module docstring."""

    def __init__(self, intensity_norm: str = "rms"):
        super().__init__()
        self.intensity_norm = intensity_norm

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = normalized_log_spectrum(pred, self.intensity_norm)
        b = normalized_log_spectrum(target, self.intensity_norm)
        return _per_sample((a - b) ** 2)


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> torch.Tensor:
    """Per-sample SSIM (Wang et al. 2004; 'valid' Gaussian filtering as in skimage/pyiqa)."""
    c = x.shape[1]
    win = min(window, x.shape[-1], x.shape[-2])
    kernel = _gaussian_window(win, sigma, x.device, x.dtype).expand(c, 1, win, win)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(z):
        return F.conv2d(z, kernel, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return _per_sample(num / den)


class SSIMLoss(nn.Module):
    """1 - SSIM (supplementary Table 2, 'SSIM Based')."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ssim(_up(pred), _up(target))


class MSELoss(nn.Module):
    """Pixel MSE (supplementary Table 2, 'MSE Based')."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _per_sample((_up(pred) - _up(target)) ** 2)
