"""Sampling: how the focal plane turns the HR scene into LR pixels."""

from __future__ import annotations

import numpy as np
import torch

from sr.degrade import degrade


def bicubic(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int) -> np.ndarray:
    """The paper's: ``PIL.Image.resize(BICUBIC)`` (``sr.degrade.degrade``, the one bicubic of the project)."""
    return degrade(torch.from_numpy(x.astype(np.float32)), scale).double().numpy()


def area(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int) -> np.ndarray:
    """Sensor integration: each LR pixel is the mean of its ``scale x scale`` HR block (a 100 % fill-factor
    detector) instead of bicubic's filter."""
    c, h, w = x.shape
    return x[:, : h - h % scale, : w - w % scale].reshape(c, h // scale, scale, w // scale, scale).mean(axis=(2, 4))
