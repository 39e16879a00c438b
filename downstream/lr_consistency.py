"""LR consistency (``lr_psnr``): is an SR output consistent with the LR frame it was made from?

The SR output is degraded again with the operator that made the LR input (for the data sets of this project the
data set's own degradation, ``downstream.degradations.degrade``: PIL bicubic down by the scale for the paper's
protocol, the same draw of noise and fixed-pattern noise for the others) and compared with that LR input by PSNR on
[0, 1] frames, all channels, no border crop:

    lr_psnr = 10 log10(1 / mean((operator(SR) - LR)^2))      (dB; MSE floored at 1e-10, i.e. at most 100 dB)

It needs no HR frame, so it also scores folders of real LR frames. An output unrelated to its input (a network
that returns a grey frame, or a frame of another scene) scores low whatever its no-reference scores say; every row
of such a (data set, degradation, method) is flagged ``lr_inconsistent`` (``sr.vocab.FLAG_LR_INCONSISTENT``) and
never marked best. The threshold, ``LR_PSNR_THRESHOLD``, and how it was measured are in docs/own_data.md.

The operator is an input (any callable ``[B,C,H,W] -> [B,C,H/s,W/s]``), so a data set degraded otherwise (blur,
noise, another kernel) passes the operator that made its LR.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from downstream.degradations import degrade
from downstream.degradations.pipeline import Spec
from sr.vocab import (
    CLASS_ALL,
    COL_CLASS,
    COL_DATASET,
    COL_DEGRADATION,
    COL_FLAGS,
    COL_METHOD,
    COL_METRIC,
    COL_VALUE,
    DEGRADATION_DEFAULT,
    FLAG_LR_INCONSISTENT,
    METRIC_LR_PSNR,
    join_flags,
    split_flags,
)

Operator = Callable[[torch.Tensor], torch.Tensor]

#: below this lr_psnr (dB) a method's outputs are flagged lr_inconsistent (measured: docs/own_data.md)
LR_PSNR_THRESHOLD = 30.0
_MSE_FLOOR = 1e-10


def degradation_operator(
    scale: int, degradation: str | Spec = DEGRADATION_DEFAULT, seed: int = 0, sample_id: str = ""
) -> Operator:
    """The operator that made a data set's LR frames from its HR frames (``downstream.degradations.degrade`` with
    the data set's degradation, seed and the sample's id, so a noisy degradation draws the same noise), batched."""

    def operator(x: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [degrade(frame, degradation, scale=scale, seed=seed, sample_id=sample_id).to(x.dtype) for frame in x]
        )

    return operator


def lr_inputs(metric, sample, dataset) -> dict:
    """The keyword inputs of an ``lr_input`` metric for one sample of ``dataset`` (none for other metrics)."""
    if not metric.spec.lr_input:
        return {}
    operator = degradation_operator(dataset.scale, dataset.degradation_spec(), dataset.degradation_seed, sample.id)
    return {"lr": sample.lr[None], "operator": operator}


def lr_psnr(image: torch.Tensor, lr: torch.Tensor, operator: Operator) -> torch.Tensor:
    """Per-image PSNR (dB) of ``operator(image)`` against ``lr``; both float [B,C,*,*] in [0, 1]."""
    down = operator(image.float())
    lr = lr.float().to(down.device)
    if lr.shape[1] != down.shape[1]:  # a 3-channel output of a gray LR (or the reverse): compare the grey levels
        down, lr = down.mean(1, keepdim=True), lr.mean(1, keepdim=True)
    if down.shape != lr.shape:
        raise ValueError(
            f"{METRIC_LR_PSNR}: the degraded output is {tuple(down.shape)}, the LR input {tuple(lr.shape)}"
        )
    mse = ((down - lr) ** 2).flatten(1).mean(1).clamp_min(_MSE_FLOOR)
    return 10.0 * torch.log10(1.0 / mse)


def flag_lr_inconsistent(rows: list[dict], threshold: float = LR_PSNR_THRESHOLD) -> list[dict]:
    """Add ``lr_inconsistent`` to every row of each (data set, degradation, method) whose mean lr_psnr (class
    ``all``) is below ``threshold``; rows are dicts with the result columns."""
    keys = (COL_DATASET, COL_DEGRADATION, COL_METHOD)
    low = {
        tuple(r[k] for k in keys)
        for r in rows
        if r[COL_METRIC] == METRIC_LR_PSNR
        and r[COL_CLASS] == CLASS_ALL
        and np.isfinite(r[COL_VALUE])
        and r[COL_VALUE] < threshold
    }
    for r in rows:
        if tuple(r[k] for k in keys) in low:
            r[COL_FLAGS] = join_flags(split_flags(r[COL_FLAGS]) | {FLAG_LR_INCONSISTENT})
    return rows
