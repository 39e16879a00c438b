"""Output: raw counts to the 8-bit frame a camera delivers (automatic gain control), then compression."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def agc(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int, tail: float) -> np.ndarray:
    """Percentile-stretch AGC: the ``tail`` % lowest and highest values of the frame clip to 0 and 255, the rest is
    mapped linearly in between (the output is then rounded to 8 bits). A flat frame maps to mid-grey."""
    lo, hi = np.percentile(x, [tail, 100.0 - tail])
    if hi <= lo:
        return np.full_like(x, 0.5)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def jpeg(x: np.ndarray, rng: np.random.Generator, *, scale: int, bits: int, quality: int) -> np.ndarray:
    """JPEG (PIL/libjpeg, 4:2:0 for colour) of the 8-bit frame at ``quality``; a gray frame (equal channels) is
    coded as one luminance channel, as infrared video is."""
    u8 = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    gray = all(np.array_equal(u8[0], u8[c]) for c in range(1, u8.shape[0]))
    img = Image.fromarray(u8[0], mode="L") if gray else Image.fromarray(np.moveaxis(u8, 0, -1), mode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as decoded:
        arr = np.asarray(decoded, dtype=np.float64) / 255.0
    return np.repeat(arr[None], u8.shape[0], axis=0) if gray else np.moveaxis(arr, -1, 0)
