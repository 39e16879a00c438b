"""Networks, first stage and diffusion built from a model config (``sr.train.config.ModelConfig`` fields).

Below both the ResShift-family method wrapper and the trainer, so a trained checkpoint is rebuilt exactly as trained.
``first_stage: pixel_unshuffle`` is the pixel-space variant used by the CPU demo models (no
autoencoder to train: the diffusion state is PixelUnshuffle(scale) of the image, as UPSR does);
``vq`` uses the frozen VQ-f4 autoencoder of the official models.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sr.checkpoint import load_into
from sr.diffusion import DIFIISR_T15, RESSHIFT_V3_T4, UPSR_T5, ResShiftDiffusion, ScheduleConfig
from sr.errors import ConfigError, UnknownNameError, check_keys
from sr.nn import UNetModelSwin, UPSRUNetModelSwin, VQModelTorch
from sr.weights import resolve_weights

SCHEDULES = {"difiisr_t15": DIFIISR_T15, "resshift_v3_t4": RESSHIFT_V3_T4, "upsr_t5": UPSR_T5}


class PixelUnshuffleAE(nn.Module):
    """Parameter-free "autoencoder": ``encode`` = PixelUnshuffle, ``decode`` = PixelShuffle.

    Has the ``encode``/``decode`` interface of :class:`VQModelTorch` so :class:`sr.sampler.ResShiftSampler`
    can use it; the empty ``_dtype_probe`` parameter only tells the sampler which dtype to use.
    """

    def __init__(self, factor: int = 4):
        super().__init__()
        self.factor = factor
        self._dtype_probe = nn.Parameter(torch.zeros(0), requires_grad=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(x, self.factor)

    def decode(self, z: torch.Tensor, **unused) -> torch.Tensor:
        return F.pixel_shuffle(z, self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # nothing stored
        state_dict.pop(prefix + "_dtype_probe", None)

    def state_dict(self, *args, **kwargs):  # noqa: D102 - parameter-free
        return {}


def schedule_config(spec: str | dict[str, Any]) -> ScheduleConfig:
    if isinstance(spec, str):
        if spec not in SCHEDULES:
            raise UnknownNameError("schedule", spec, SCHEDULES)
        return SCHEDULES[spec]
    check_keys("model.schedule", spec, {"steps", "kappa", "min_noise_level", "power", "etas_end", "sqrt_eta_cap"})
    return ScheduleConfig(**spec)


def build_diffusion(
    schedule: str | dict[str, Any], input_scaling: str = "latent", sf: int = 4, model_output_unshuffle: int = 1
) -> ResShiftDiffusion:
    return ResShiftDiffusion.from_config(
        schedule_config(schedule), input_scaling=input_scaling, sf=sf, model_output_unshuffle=model_output_unshuffle
    )


#: ``unet.arch``: the Swin-UNet of ResShift / SinSR / DifIISR / HF-Diff (the default), or UPSR's network_g (the
#: same UNet with a full-resolution RGB head: its output is pixel-unshuffled back into the state, see
#: :func:`unet_output_unshuffle`)
UNET_ARCHS = {"swin": UNetModelSwin, "upsr": UPSRUNetModelSwin}


def build_unet(kwargs: dict[str, Any], what: str = "model.unet") -> UNetModelSwin:
    """The denoiser of ``kwargs`` (its constructor's keywords plus an optional ``arch`` of :data:`UNET_ARCHS`), shared
    by the methods and the trainer; a bad keyword is a ConfigError naming ``what``."""
    kwargs = dict(kwargs)
    arch = kwargs.pop("arch", "swin")
    if arch not in UNET_ARCHS:
        raise ConfigError(f"{what}.arch must be one of {', '.join(UNET_ARCHS)}, got {arch!r}")
    try:
        return UNET_ARCHS[arch](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def unet_output_unshuffle(kwargs: dict[str, Any], scale: int) -> int:
    """The pixel-unshuffle factor that maps the denoiser's output into the diffusion state: ``scale`` for UPSR's
    full-resolution head, else 1 (``build_diffusion(model_output_unshuffle=...)``)."""
    return scale if kwargs.get("arch", "swin") == "upsr" else 1


def build_first_stage(
    kind: str,
    vq: dict[str, Any] | None = None,
    vq_weights: str | None = None,
    scale: int = 4,
    weights_dir: str | os.PathLike | None = None,
    random_weights: bool = False,
) -> nn.Module:
    """The frozen first stage (``encode``/``decode``)."""
    if kind == "pixel_unshuffle":
        module = PixelUnshuffleAE(scale)
    elif kind == "vq":
        module = VQModelTorch(**(vq or {}))
        if vq_weights and not random_weights:
            load_into(module, resolve_weights(vq_weights, weights_dir, what="model.vq_weights"), "VQModelTorch")
        elif not random_weights:
            raise ConfigError("model.first_stage is 'vq' but model.vq_weights is not set")
    else:
        raise ConfigError(f"model.first_stage must be 'pixel_unshuffle' or 'vq', got {kind!r}")
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
