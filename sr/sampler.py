"""Inference pipeline of the ResShift family (ResShift, SinSR, DifIISR, HF-Diff, UPSR): LR in, SR out.

Per tile it does what the official ``sample_func`` does (DifIISR ``sampler.py``, README 4.5 of the
reference kit): LR [0,1] -> [-1,1]; reflect-pad bottom/right to a multiple of ``pad_multiple``;
y = bicubic x4 (``F.interpolate``, no clamp); z_y = VQ encode; z_T = z_y + kappa sqrt(eta_{T-1})
noise; one network call at t = T-1 (``one_step``) or the full deterministic DDIM / stochastic loop;
VQ decode; crop; clamp to [-1,1]; back to [0,1]. UPSR (``upsr``: :class:`UPSRConditioning`) conditions the
network on its prior g(y) next to y and scales the noise by the uncertainty map in the same path.

Large inputs are cut into LR tiles of ``chop_size`` with stride ``chop_stride`` (upstream
``ImageSpliterTh``: start positions every stride, the last one moved back to end at the border) and
merged by plain averaging, or optionally by a smooth linear-ramp blend. Noise comes from an explicit
``torch.Generator`` seeded per call and is drawn tile by tile, so results do not depend on
``chop_bs``. Everything runs under ``torch.inference_mode``; ``precision`` sets autocast per network.

Fast-path options (docs/performance.md has the measured effect and the tolerance of each):

* ``chop_bs``: tiles per network batch (the same noise as ``chop_bs=1``, drawn tile by tile);
* ``precision``: autocast dtype of the UNet, the VQ encoder and the VQ decoder (``PRECISIONS``; CUDA and
  CPU autocast). ``mixed`` keeps the UNet and the encoder in fp32 and runs the decoder in fp16: the UNet's
  output is quantised to the nearest VQ code, and any low-precision UNet or encoder moves it across code
  boundaries (docs/performance.md). ``auto`` is ``AUTO_PRECISION`` of the device (fp32 until a GPU run
  confirms ``mixed``). The VQ codebook search is always fp32;
* ``channels_last``: UNet and VQ weights and activations in NHWC memory format (same maths);
* ``compile``: ``torch.compile`` of the UNet call and the VQ encode/decode, off by default; ``True`` /
  ``"default"`` or ``"reduce-overhead"`` (CUDA graphs; on other devices the default mode, logged). Static
  shapes (``dynamic=False``): a data set of one frame size compiles once, every other padded size
  once more; inductor's on-disk cache is ``sr.runtime.compile_cache_dir()``, so later runs reuse
  the build. If inductor cannot build on the machine the first call logs the reason and the sampler
  runs eager.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from sr.diffusion import uncertainty_map
from sr.diffusion.resshift import ResShiftDiffusion, SampleMode, VQFirstStage

Blend = Literal["average", "smooth"]
PARTS = ("unet", "encode", "decode")
#: autocast dtype per network call (None: fp32, no autocast)
PRECISIONS: dict[str, dict[str, torch.dtype | None]] = {
    "fp32": dict.fromkeys(PARTS),
    "bf16": dict.fromkeys(PARTS, torch.bfloat16),
    "fp16": dict.fromkeys(PARTS, torch.float16),
    # the quantiser's input exactly as fp32 computes it (no VQ code can flip), the decoder in fp16
    "mixed": {"unet": None, "encode": None, "decode": torch.float16},
}
#: device type -> policy of ``auto`` (fp32 where absent). Empty until ``benchmarks.speed.gpu_check`` measures ``mixed``
#: within the official fp16's deviation (max 0.04, mean 0.002) at 1024x768 on a GPU; docs/performance.md
#: has the CPU study behind ``mixed`` and how to set this (``{"cuda": "mixed"}``).
AUTO_PRECISION: dict[str, str] = {}
_DTYPE_NAMES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(spec: str | dict[str, str], device: torch.device | str) -> dict[str, torch.dtype | None]:
    """Autocast dtype per part for a policy name (``PRECISIONS`` or ``auto``) or a ``{part: fp32|bf16|fp16}``
    mapping (missing parts fp32)."""
    if isinstance(spec, dict):
        unknown = set(spec) - set(PARTS)
        bad = {v for v in spec.values() if v not in _DTYPE_NAMES}
        if unknown or bad:
            raise ValueError(f"precision mapping: parts must be {PARTS} and values {tuple(_DTYPE_NAMES)}, got {spec}")
        return {part: _DTYPE_NAMES[spec.get(part, "fp32")] for part in PARTS}
    if spec == "auto":
        spec = AUTO_PRECISION.get(torch.device(device).type, "fp32")
    if spec not in PRECISIONS:
        raise ValueError(f"precision must be auto, one of {', '.join(PRECISIONS)} or a mapping, got {spec!r}")
    return dict(PRECISIONS[spec])


log = logging.getLogger("sr.sampler")


#: ``compile`` modes: ``default`` (inductor) and ``reduce-overhead`` (inductor + CUDA graphs: each compiled
#: call replays as one graph launch, which removes the per-kernel launch cost; CUDA only)
COMPILE_MODES = ("default", "reduce-overhead")


def compile_mode(requested: str, device_type: str) -> str:
    """The ``torch.compile`` mode used for inputs on ``device_type``: CUDA graphs exist on CUDA only, so
    ``reduce-overhead`` runs in the ``default`` mode elsewhere."""
    if requested not in COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, got {requested!r}")
    return requested if device_type == "cuda" else "default"


class _MaybeCompiled:
    """``torch.compile(fn)`` that falls back to ``fn`` (once, with a logged reason) when it fails.

    Built at the first call, where the inputs' device picks the mode (``compile_mode``); the failure of a
    build shows up there too (torch compiles lazily), and inference is pure, so re-running eagerly is
    safe. Under CUDA graphs the static output buffers are reused by the next replay, so every call
    starts a new graph step and returns a copy of the output."""

    def __init__(self, fn, what: str, mode: str = "default"):
        from sr.runtime import compile_cache_dir

        compile_mode(mode, "cuda")  # a bad name fails here
        self.fn, self.what, self.mode = fn, what, mode
        self.used_mode: str | None = None
        self.reason: str | None = None
        self.compiled = None
        compile_cache_dir()

    def _give_up(self, exc: BaseException) -> None:
        self.compiled = None
        self.reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        log.warning("torch.compile of %s unavailable, running eager (%s)", self.what, self.reason)

    def _build(self, args) -> None:
        device = next((a.device.type for a in args if torch.is_tensor(a)), "cpu")
        self.used_mode = compile_mode(self.mode, device)
        if self.used_mode != self.mode:
            log.info(
                "torch.compile of %s: %s needs CUDA, compiling in the default mode on %s", self.what, self.mode, device
            )
        try:
            options = {"mode": self.used_mode} if self.used_mode != "default" else {}
            self.compiled = torch.compile(self.fn, dynamic=False, **options)
        except Exception as exc:  # noqa: BLE001 - torch without dynamo support, unsupported Python
            self._give_up(exc)

    def status(self) -> str:
        if self.reason is not None:
            return f"eager ({self.reason})"
        if self.used_mode is None:
            return "not built yet"
        if self.used_mode != self.mode:
            return f"compiled ({self.used_mode}: {self.mode} needs CUDA)"
        return "compiled" if self.used_mode == "default" else f"compiled ({self.used_mode})"

    def __call__(self, *args, **kwargs):
        if self.used_mode is None:
            self._build(args)
        if self.compiled is not None:
            try:
                if self.used_mode == "reduce-overhead":
                    torch.compiler.cudagraph_mark_step_begin()
                    return self.compiled(*args, **kwargs).clone()
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - inductor cannot build here (no compiler, triton, ...)
                self._give_up(exc)
        return self.fn(*args, **kwargs)


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile start positions along one axis (upstream ``ImageSpliterTh.extract_starts``)."""
    if length <= tile:
        return [0]
    starts = []
    for s in range(0, length, stride):
        s = min(s, length - tile)
        if s not in starts:
            starts.append(s)
    return starts


def reflect_pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Mirror-pad bottom/right up to a multiple of ``multiple`` (edge pixel not repeated).

    Pads larger than the image are done in several reflect passes instead of failing.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    while pad_h or pad_w:
        step_h, step_w = min(pad_h, x.shape[-2] - 1), min(pad_w, x.shape[-1] - 1)
        if (pad_h and step_h <= 0) or (pad_w and step_w <= 0):
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")  # 1-pixel axis: nothing to mirror
            break
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x


def _ramp(n: int, overlap: int, device: torch.device) -> torch.Tensor:
    if overlap <= 0:
        return torch.ones(n, device=device)
    i = torch.arange(n, device=device, dtype=torch.float32) + 0.5
    return torch.clamp(torch.minimum(i, n - i) / overlap, 1e-3, 1.0)


class ResShiftSampler:
    """Callable SR pipeline: ``sampler(lr_01[B,3,h,w]) -> sr_01[B,3,4h,4w]``.

    ``vq`` is the VQ-f4 autoencoder (latent models); ``None`` runs the diffusion directly on the
    upsampled image (only meaningful for a network trained that way).
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        vq: torch.nn.Module | None,
        diffusion: ResShiftDiffusion,
        steps_mode: SampleMode = "one_step",
        chop_size: int = 512,
        chop_stride: int = 448,
        chop_bs: int = 1,
        blend: Blend = "average",
        pad_multiple: int = 64,
        seed: int = 12345,
        precision: str | dict[str, str] = "fp32",
        scale_factor: float = 1.0,
        channels_last: bool = False,
        compile: bool | str = False,
        upsr: UPSRConditioning | None = None,
        clip_denoised: bool | None = None,
    ):
        """``upsr``: UPSR's conditioning (None: plain ResShift). ``clip_denoised``: clamp the x0 prediction of
        each step to [-1, 1] (default: only without a first stage, as upstream ResShift does)."""
        if chop_stride > chop_size:
            raise ValueError(f"chop_stride ({chop_stride}) must not exceed chop_size ({chop_size})")
        if blend not in ("average", "smooth"):
            raise ValueError(f"blend must be 'average' or 'smooth', got {blend!r}")
        self.unet, self.diffusion = unet, diffusion
        self.first_stage = VQFirstStage(vq, scale_factor) if vq is not None else None
        self.steps_mode = steps_mode
        self.chop_size, self.chop_stride, self.chop_bs = chop_size, chop_stride, max(1, chop_bs)
        self.blend, self.pad_multiple, self.seed = blend, pad_multiple, seed
        self.upsr = upsr
        self.clip_denoised = vq is None if clip_denoised is None else clip_denoised
        self.sf = diffusion.sf
        self.channels_last = False
        self.compile: bool | str = False
        self._unet_call = self.unet
        self._encode_call = self._decode_call = None
        if self.first_stage is not None:
            self._encode_call, self._decode_call = self.first_stage.encode, self.first_stage.decode
        self.precision: str | dict[str, str] = "fp32"
        self.configure(channels_last=channels_last, compile=compile, precision=precision)

    def configure(
        self,
        *,
        channels_last: bool | None = None,
        compile: bool | str | None = None,
        precision: str | dict[str, str] | None = None,
    ) -> ResShiftSampler:
        """Switch the fast-path options after construction (``None`` keeps the current value).

        ``compile``: False (eager), True or ``"default"``, or ``"reduce-overhead"`` (``COMPILE_MODES``).

        ``channels_last`` converts the UNet's and the VQ model's weights in place (they are shared
        with the owning method); turning it off converts them back to contiguous NCHW."""
        if precision is not None:
            resolve_precision(precision, "cpu")  # a bad name fails here, not at the first call
            self.precision = precision
        if channels_last is not None and channels_last != self.channels_last:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            self.unet.to(memory_format=fmt)
            if isinstance(self.first_stage, VQFirstStage):
                self.first_stage.vq.to(memory_format=fmt)
            self.channels_last = channels_last
        if compile is True:
            compile = "default"
        if compile is not None and compile != self.compile:
            if compile:
                compile_mode(compile, "cuda")  # a bad name fails here
            self.compile = compile
            if compile:
                self._unet_call = _MaybeCompiled(self.unet, "the UNet", compile)
                if self.first_stage is not None:
                    self._encode_call = _MaybeCompiled(self.first_stage.encode, "the VQ encoder", compile)
                    self._decode_call = _MaybeCompiled(self.first_stage.decode, "the VQ decoder", compile)
            else:
                self._unet_call = self.unet
                if self.first_stage is not None:
                    self._encode_call, self._decode_call = self.first_stage.encode, self.first_stage.decode
        return self

    def compile_status(self) -> dict[str, str]:
        """``{part: status}`` of the three network calls: ``eager``, ``compiled``, ``compiled (MODE)``,
        ``compiled (default: MODE needs CUDA)``, ``eager (reason of a failed build)`` or ``not built yet``."""
        out = {}
        calls = (("unet", self._unet_call), ("vq_encode", self._encode_call), ("vq_decode", self._decode_call))
        for part, call in calls:
            if call is None:
                continue
            out[part] = call.status() if isinstance(call, _MaybeCompiled) else "eager"
        return out

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def _autocast(self, part: str, device: torch.device):
        dtype = resolve_precision(self.precision, device)[part]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _model(self, x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        with self._autocast("unet", x.device):
            if self.channels_last:
                x, kwargs = self._fmt(x), {k: self._fmt(v) if torch.is_tensor(v) else v for k, v in kwargs.items()}
            return self._unet_call(x, t, **kwargs).float().contiguous()

    def _encode(self, image: torch.Tensor) -> torch.Tensor:
        if self.first_stage is None:
            return image
        with self._autocast("encode", image.device):
            return self._encode_call(self._fmt(image)).float().contiguous()

    def _decode(self, latent: torch.Tensor) -> torch.Tensor:
        if self.first_stage is None:
            return latent
        with self._autocast("decode", latent.device):
            return self._decode_call(self._fmt(latent)).float().contiguous()

    def sample_pm1(
        self,
        lr_pm1: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        per_item: int = 0,
    ) -> torch.Tensor:
        """One batch of [-1,1] LR tiles -> clamped [-1,1] SR (upstream ``sample_func``).

        The prior noise is ``noise`` if given (latent-sized), else drawn from ``generator`` per chunk
        of ``per_item`` batch entries (0: the whole batch at once)."""
        h, w = lr_pm1.shape[-2:]
        lq = reflect_pad_to_multiple(lr_pm1, self.pad_multiple)
        y = F.interpolate(lq, scale_factor=self.sf, mode="bicubic")
        z_y = self._encode(y)
        condition, un_z = lq, None
        if self.upsr is not None:
            condition, un = self.upsr(lq, y)
            un_z = self._encode(un)
        chunk = per_item or z_y.shape[0]
        if noise is None:
            noise = torch.cat(
                [
                    torch.randn(z_y[i : i + chunk].shape, generator=generator, device=z_y.device)
                    for i in range(0, z_y.shape[0], chunk)
                ]
            )
        z_T = self.diffusion.prior_sample(z_y, noise, un_z)
        z_0 = self.diffusion.sample_loop(
            self._model,
            z_T,
            z_y,
            self.steps_mode,
            model_kwargs={"lq": condition},
            un=un_z,
            clip_denoised=self.clip_denoised,
            generator=generator,
        )
        out = self._decode(z_0)[..., : h * self.sf, : w * self.sf]
        return out.clamp(-1.0, 1.0)

    def __call__(self, lr_01: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            generator = torch.Generator(device=lr_01.device).manual_seed(self.seed)
            lr_pm1 = (lr_01.float() - 0.5) / 0.5
            h, w = lr_pm1.shape[-2:]
            if max(h, w) <= self.chop_size:
                return self.sample_pm1(lr_pm1, generator) * 0.5 + 0.5
            return self._tiled(lr_pm1, generator) * 0.5 + 0.5

    def _tiled(self, lr_pm1: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = lr_pm1.shape
        sf, tile = self.sf, self.chop_size
        boxes = [
            (i, j, min(tile, h), min(tile, w))
            for i in tile_starts(h, tile, self.chop_stride)
            for j in tile_starts(w, tile, self.chop_stride)
        ]
        acc = torch.zeros(b, c, h * sf, w * sf, device=lr_pm1.device)
        weight = torch.zeros(1, 1, h * sf, w * sf, device=lr_pm1.device)
        overlap = (tile - self.chop_stride) * sf
        for first in range(0, len(boxes), self.chop_bs):
            group = boxes[first : first + self.chop_bs]
            batch = torch.cat([lr_pm1[..., i : i + th, j : j + tw] for i, j, th, tw in group])
            result = self.sample_pm1(batch, generator, per_item=b)
            for n, (i, j, th, tw) in enumerate(group):
                wgt = (
                    torch.ones(1, 1, th * sf, tw * sf, device=acc.device)
                    if self.blend == "average"
                    else (_ramp(th * sf, overlap, acc.device)[:, None] * _ramp(tw * sf, overlap, acc.device)[None, :])[
                        None, None
                    ]
                )
                acc[..., i * sf : (i + th) * sf, j * sf : (j + tw) * sf] += result[n * b : (n + 1) * b] * wgt
                weight[..., i * sf : (i + th) * sf, j * sf : (j + tw) * sf] += wgt
        return acc / weight


# ----- UPSR: pixel-space ResShift with uncertainty-weighted noise (sr.train.objectives.upsr trains it) -----
def upsr_condition(
    g_pm1: torch.Tensor, y_bic: torch.Tensor, scale: int, psi_max: float, b: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(PixelUnshuffle(cat[g, y_bic]), uncertainty map at full resolution)."""
    un = uncertainty_map(g_pm1, y_bic, psi_max, b)
    return F.pixel_unshuffle(torch.cat([g_pm1, y_bic], dim=1), scale), un


@dataclass(frozen=True)
class UPSRConditioning:
    """UPSR's conditioning in :class:`ResShiftSampler`: the prior g(y) of the padded LR (any SR method), the
    network input PixelUnshuffle(cat[g, y_bic]) and the uncertainty map that scales the noise.

    The official ``sample_func`` uses ``clip_denoised=False`` and an unclamped g(y) (``clamp_prior=False``); the
    demo models were trained and validated with both on."""

    prior: Any
    scale: int
    psi_max: float = 0.1
    b: float = 0.4
    clamp_prior: bool = True

    def __call__(self, lq_pm1: torch.Tensor, y_bic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lq01 = lq_pm1 * 0.5 + 0.5
        # SRMethod.upscale clamps to [0,1]; _upscale is the raw network output (3-channel input here)
        g01 = self.prior.upscale(lq01.cpu()) if self.clamp_prior else self.prior._upscale(lq01).float()
        return upsr_condition(g01.to(lq_pm1.device) * 2 - 1, y_bic, self.scale, self.psi_max, self.b)
