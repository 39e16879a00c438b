"""The time a degradation adds per frame, as a ratio to the paper's bicubic path
(``benchmarks.speed.perf --degradations``).

For each LR size WxH the HR frame is an 8-bit random frame of ``scale`` times that size (one channel, as infrared
frames are); each degradation label is timed with ``benchmarks.speed.timing.time_calls``
(``downstream.degradations.degrade`` on that frame, a new sample id per call so random draws are not cached anywhere)
and reported as the median milliseconds per frame and ``ratio`` = that / the bicubic median of the same size, measured
in the same process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmarks.speed import timing as T
from sr.vocab import COL_DEGRADATION, DEGRADATION_DEFAULT

COLUMNS = [COL_DEGRADATION, T.COL_SIZE, "scale", T.COL_LATENCY_MS, T.COL_P90_MS, "ratio"]


def degradation_times(
    labels: list[str], sizes: list[str], scale: int = 4, warmup: int = 1, repeat: int = 5
) -> list[dict[str, Any]]:
    """One row per (size, label); bicubic is always timed first, as the ratio's denominator."""
    from downstream.degradations import degrade, resolve

    rows = []
    for size in sizes:
        width, height = T.parse_size(size)
        rng = np.random.default_rng(0)
        hr = torch.from_numpy(rng.integers(0, 256, (1, height * scale, width * scale)) / 255.0).float()
        base = None
        for label in dict.fromkeys([DEGRADATION_DEFAULT, *labels]):
            spec, calls = resolve(label), iter(range(10**9))
            timed = T.time_calls(
                lambda hr=hr, spec=spec, calls=calls: degrade(hr, spec, scale=scale, sample_id=str(next(calls))),
                torch.device("cpu"),
                warmup,
                repeat,
            )
            base = base or timed.median_ms
            rows.append(
                {
                    COL_DEGRADATION: spec.label,
                    T.COL_SIZE: f"{width}x{height}",
                    "scale": scale,
                    T.COL_LATENCY_MS: round(timed.median_ms, 2),
                    T.COL_P90_MS: round(timed.p90_ms, 2),
                    "ratio": round(timed.median_ms / base, 2),
                }
            )
    return rows
