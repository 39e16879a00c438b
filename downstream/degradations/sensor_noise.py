"""Noise in counts on the LR grid: temporal noise and the fixed-pattern noise a non-uniformity correction leaves.

Amplitudes are in 8-bit digital numbers (DN, 1/255 of full scale) whatever the frame's bit depth, so one severity
means the same fraction of the output range on an 8-bit and on a 16-bit frame. Each pattern is drawn once per
pixel / column / row and shared by the channels.
"""

from __future__ import annotations

import numpy as np

DN = 1.0 / 255.0


def noise(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int, sigma: float) -> np.ndarray:
    """Additive white Gaussian temporal noise of standard deviation ``sigma`` DN."""
    return x + rng.normal(0.0, sigma * DN, size=(1, *x.shape[-2:]))


def stripe(
    x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int, column_sigma: float, row_sigma: float
) -> np.ndarray:
    """Column and row offsets (readout-amplifier fixed pattern): one Gaussian offset per column (std
    ``column_sigma`` DN) and per row (``row_sigma`` DN)."""
    h, w = x.shape[-2:]
    columns = rng.normal(0.0, column_sigma * DN, size=(1, 1, w))
    rows = rng.normal(0.0, row_sigma * DN, size=(1, h, 1))
    return x + columns + rows


def nuc(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: int,
    bits: int,
    gain_sigma: float,
    offset_sigma: float,
    dead: float,
    hot: float,
) -> np.ndarray:
    """Residue of a non-uniformity correction: per-pixel gain ``1 + N(0, gain_sigma)`` and offset
    ``N(0, offset_sigma)`` DN; then exactly ``round(dead * pixels)`` dead pixels (0) and ``round(hot * pixels)``
    hot pixels (full scale) at distinct positions."""
    h, w = x.shape[-2:]
    gain = 1.0 + rng.normal(0.0, gain_sigma, size=(1, h, w))
    offset = rng.normal(0.0, offset_sigma * DN, size=(1, h, w))
    out = x * gain + offset
    n_dead, n_hot = round(dead * h * w), round(hot * h * w)
    where = rng.choice(h * w, size=n_dead + n_hot, replace=False)
    flat = out.reshape(out.shape[0], -1)
    flat[:, where[:n_dead]] = 0.0
    flat[:, where[n_dead:]] = 1.0
    return flat.reshape(out.shape)
