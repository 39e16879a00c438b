"""The ResShift family behind the SR interface: ResShift v1/v2/v3, SinSR, DifIISR, HF-Diff, UPSR-style.

One class, configured by its YAML::

    factory: sr.methods.resshift:ResShiftFamily
    options:
      unet: x4                    # preset name (x4: the official 118.6 M Swin-UNet; upsr_x4: UPSR's
                                  # network_g) or UNetModelSwin kwargs (+ ``arch: upsr`` for UPSRUNetModelSwin)
      first_stage: vq             # vq (VQ-f4 autoencoder) | pixel_unshuffle (pixel-space demo models)
      vq: vq_f4                   # preset or VQModelTorch kwargs
      weights: {unet: difiisr, vq: resshift_vq_f4}   # weights-registry names (or file paths)
      schedule: difiisr_t15       # sr.builders.SCHEDULES preset or ScheduleConfig fields
      steps_mode: one_step        # one_step | ddim | stochastic
      chop_size: 512              # LR tile size / stride (upstream ImageSpliterTh)
      chop_stride: 448
      precision: auto             # sr.sampler precision: auto (sr.sampler.AUTO_PRECISION) | fp32 | bf16 |
                                  # fp16 | mixed | {unet: fp32, encode: fp32, decode: fp16}

Inference goes through :class:`sr.sampler.ResShiftSampler` (pad, bicubic x4, encode, prior,
network call(s), decode, crop). UNet files are read through :func:`sr.checkpoint.load_into`
(``{'state_dict': ...}`` / ``module.`` wrappers of the official trainers, or the trainer's
``ema.safetensors``). ``random_weights=True`` builds untrained the networks whose file is missing (flagged).

``upsr`` options (a mapping: ``prior_method``, ``prior_options``, ``psi_max``, ``b``, ``clip_denoised``,
``clamp_prior``) switch to UPSR-style sampling: the network is conditioned on ``cat[g(y), bicubic(y)]``
(pixel-unshuffled) where g is another registered SR method (built with ``prior_options`` and this
method's device / weights_dir / random_weights), and the prior noise is weighted by the uncertainty map
``b + (1-b) clip(|g(y) - bicubic(y)|/2, 0, psi_max)/psi_max``. With ``arch: upsr`` (preset ``upsr_x4``)
the network is UPSR's own ``network_g``, which returns full-resolution RGB that the diffusion
pixel-unshuffles (``model_output_unshuffle = scale``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sr.base import SRMethod
from sr.checkpoint import load_into
from sr.errors import ConfigError
from sr.vocab import FLAG_RANDOM_WEIGHTS, FLAG_TRAINED_WITH_RANDOM_WEIGHTS, split_flags
from sr.weights import random_where_missing, resolve_weights

UNET_PRESETS: dict[str, dict[str, Any]] = {
    "x4": dict(
        image_size=64,
        in_channels=6,
        model_channels=160,
        out_channels=3,
        cond_lq=True,
        attention_resolutions=[64, 32, 16, 8],
        dropout=0.0,
        channel_mult=[1, 2, 2, 4],
        num_res_blocks=[2, 2, 2, 2],
        num_head_channels=32,
        use_scale_shift_norm=True,
        swin_depth=2,
        swin_embed_dim=192,
        window_size=8,
        mlp_ratio=4,
    ),
    # UPSR network_g (options/001_UPSR_RealSR_x4.yml): 48 = PixelUnshuffle(4) of the RGB state, 96 conditioning
    # channels (lq_size 64 -> PixelUnshuffle(4) of cat[g(y), bicubic(y)]), full-resolution RGB head (num_feat)
    "upsr_x4": dict(
        arch="upsr",
        image_size=64,
        in_channels=48,
        model_channels=160,
        out_channels=3,
        attention_resolutions=[64, 32, 16, 8],
        dropout=0.0,
        channel_mult=[1, 2, 2, 4],
        num_res_blocks=[2, 2, 2, 2],
        conv_resample=True,
        dims=2,
        use_fp16=False,
        num_head_channels=32,
        use_scale_shift_norm=True,
        resblock_updown=False,
        swin_depth=2,
        swin_embed_dim=192,
        window_size=8,
        mlp_ratio=4,
        cond_lq=True,
        lq_size=64,
        num_feat=128,
    ),
}
UPSR_OPTIONS = {"prior_method", "prior_options", "psi_max", "b", "clip_denoised", "clamp_prior"}
VQ_PRESETS: dict[str, dict[str, Any]] = {
    "vq_f4": dict(
        ddconfig=dict(
            double_z=False,
            z_channels=3,
            resolution=256,
            in_channels=3,
            out_ch=3,
            ch=128,
            ch_mult=[1, 2, 4],
            num_res_blocks=2,
            attn_resolutions=[],
            dropout=0.0,
            padding_mode="zeros",
        ),
        n_embed=8192,
        embed_dim=3,
    ),
}
_UNET_KEYS = ("ema", "state_dict", "params_ema", "params", "model")


def _preset(value: str | dict[str, Any], presets: dict[str, dict[str, Any]], what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value not in presets:
        raise ConfigError(f"{what}: unknown preset {value!r}; known: {', '.join(presets)} (or give the kwargs)")
    return presets[value]


class ResShiftFamily(SRMethod):
    rgb_only = True

    def __init__(
        self,
        name: str,
        scale: int,
        *,
        unet: str | dict[str, Any] = "x4",
        first_stage: str = "vq",
        vq: str | dict[str, Any] = "vq_f4",
        weights: dict[str, str] | None = None,
        schedule: str | dict[str, Any] = "difiisr_t15",
        input_scaling: str = "latent",
        steps_mode: str = "one_step",
        chop_size: int = 512,
        chop_stride: int = 448,
        chop_bs: int = 1,
        pad_multiple: int = 64,
        seed: int = 12345,
        precision: str | dict[str, str] = "auto",
        channels_last: bool = False,
        compile: bool | str = False,
        upsr: dict[str, Any] | None = None,
        **common,
    ):
        super().__init__(name, scale, **common)
        from sr.builders import build_diffusion, build_first_stage, build_unet, unet_output_unshuffle
        from sr.sampler import ResShiftSampler, UPSRConditioning, compile_mode, resolve_precision

        try:
            resolve_precision(precision, "cpu")
        except ValueError as exc:
            raise ConfigError(f"method {name!r}: precision: {exc}") from None
        if isinstance(compile, str):
            try:
                compile_mode(compile, "cuda")
            except ValueError as exc:
                raise ConfigError(f"method {name!r}: compile: {exc}") from None
        if steps_mode not in ("one_step", "ddim", "stochastic"):
            raise ConfigError(f"method {name!r}: steps_mode must be one_step, ddim or stochastic")
        weights = dict(weights or {})
        self._files: dict[str, Path] = {}
        random_allowed, random_roles = self.random_weights, set()  # random networks only for missing files
        for role in ("unet",) + (("vq",) if first_stage == "vq" else ()):
            if role not in weights and not random_allowed:
                raise ConfigError(f"method {name!r}: options.weights.{role} is required")
            what = f"method {name!r}: options.weights.{role}"
            if random_where_missing(
                random_allowed,
                role in weights
                and (lambda entry=weights[role], what=what: resolve_weights(entry, self.weights_dir, what=what)),
            ):
                random_roles.add(role)
            else:
                self._files[role] = resolve_weights(weights[role], self.weights_dir, what=what)
        self.random_weights = bool(random_roles)
        unet_kwargs = dict(_preset(unet, UNET_PRESETS, f"method {name!r} unet"))
        unet_arch = unet_kwargs.get("arch", "swin")
        self.unet = build_unet(unet_kwargs, f"method {name!r} unet")
        if "unet" in self._files:
            load_into(self.unet, self._files["unet"], f"{type(self.unet).__name__} ({name})", keys=_UNET_KEYS)
        vq_cfg = _preset(vq, VQ_PRESETS, f"method {name!r} vq") if first_stage == "vq" else None
        self.first = build_first_stage(
            first_stage,
            vq_cfg,
            str(self._files["vq"]) if "vq" in self._files else None,
            scale,
            self.weights_dir,
            "vq" in random_roles,
        )
        self.unet.eval().requires_grad_(False).to(self.device)
        self.first.to(self.device)
        self.diffusion = build_diffusion(
            schedule, input_scaling, scale, model_output_unshuffle=unet_output_unshuffle(unet_kwargs, scale)
        )
        self.upsr = dict(upsr) if upsr else None
        self._prior = None
        conditioning, clip_denoised = None, None
        if unet_arch == "upsr" and not self.upsr:
            raise ConfigError(f"method {name!r}: unet arch 'upsr' needs the upsr options (prior_method, ...)")
        if self.upsr:
            unknown = set(self.upsr) - UPSR_OPTIONS
            if unknown:
                raise ConfigError(f"method {name!r}: unknown upsr option(s) {sorted(unknown)}")
            from sr.registry import load_method

            self._prior = load_method(
                self.upsr.get("prior_method", "lanczos"),
                device=str(self.device),
                weights_dir=self.weights_dir,
                random_weights=random_allowed,
                **dict(self.upsr.get("prior_options") or {}),
            )
            conditioning = UPSRConditioning(
                self._prior,
                scale,
                psi_max=self.upsr.get("psi_max", 0.1),
                b=self.upsr.get("b", 0.4),
                clamp_prior=bool(self.upsr.get("clamp_prior", True)),
            )
            clip_denoised = bool(self.upsr.get("clip_denoised", True))
        self.sampler = ResShiftSampler(
            self.unet,
            self.first,
            self.diffusion,
            steps_mode=steps_mode,
            chop_size=chop_size,
            chop_stride=chop_stride,
            chop_bs=chop_bs,
            pad_multiple=pad_multiple,
            seed=seed,
            precision=precision,
            channels_last=channels_last,
            compile=compile,
            upsr=conditioning,
            clip_denoised=clip_denoised,
        )

    @property
    def flags(self) -> tuple[str, ...]:
        """Adds ``trained_with_random_weights`` when the UNet file says its training losses used
        untrained feature networks (metadata written by ``sr.train``)."""
        extra = ()
        path = self._files.get("unet")
        if path is not None and path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as fh:
                if FLAG_RANDOM_WEIGHTS in split_flags((fh.metadata() or {}).get("flags", "")):
                    extra = (FLAG_TRAINED_WITH_RANDOM_WEIGHTS,)
        if self._prior is not None:  # the prior g's own markers travel with this method's numbers
            extra += tuple(f for f in self._prior.flags if f not in extra)
        flags = super().flags
        return flags + tuple(f for f in extra if f not in flags)

    def weight_files(self) -> dict[str, Path]:
        files = dict(self._files)
        if self._prior is not None:
            files.update({f"prior.{k}": v for k, v in self._prior.weight_files().items()})
        return files

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        return self.sampler(x.to(self.device)).float().cpu()
