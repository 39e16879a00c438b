"""Baselines whose networks spandrel knows (ESRGAN family, SwinIR, HAT, DAT), from official checkpoints.

One class serves every such method; its YAML names the weights-registry entry, the architecture
spandrel must detect (``arch``), the official hyper-parameters (``arch_params``) and the layout the
official checkpoint is written in (``layout``)::

    factory: sr.methods.spandrel_method:SpandrelMethod
    options:
      weights: swinir_realsr_large_x4_gan     # name in configs/weights.yaml
      arch: SwinIR                            # spandrel architecture id
      layout: params_ema                      # how the official file stores the state dict
      arch_params: {upscale: 4, embed_dim: 240, ...}

Loading goes weights registry -> :func:`sr.checkpoint.load_checkpoint` (no pickle code runs) ->
:func:`sr.checkpoint.extract_state_dict` -> ``spandrel.ModelLoader().load_from_state_dict``; the
detected architecture and scale must equal the YAML's. ``random_weights=True`` builds, when the file is
missing (a file that is there is always used), the same architecture from ``arch_params`` with random
weights, writes its state dict in the official layout (:func:`official_state_dict`) and loads that
through the same spandrel path, so a
random-weight run exercises everything but the file read. Its results carry the ``random_weights``
flag.

``rebuild_from_arch_params: true`` builds the network from ``arch_params`` and loads the file's state
dict into it strictly, instead of using the network spandrel builds from the state dict: for
hyper-parameters spandrel cannot read from a state dict and only guesses (ATD's ``category_size``,
which spandrel sets to 256 unless the model is ATD-light; UPSR's ATD-real uses 128).

Large frames can be processed in tiles (``tile`` LR pixels, ``tile_overlap`` LR pixels of overlap,
overlaps averaged) so memory stays bounded; ``precision`` fp16/bf16 applies on CUDA only.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from sr import weights as weights_registry
from sr.base import SRMethod
from sr.checkpoint import CheckpointError, extract_state_dict, load_checkpoint
from sr.errors import ConfigError

log = logging.getLogger(__name__)

#: How an official checkpoint file stores its state dict:
#:   flat        - the state dict itself
#:   params      - BasicSR ``{"params": sd}``
#:   params_ema  - BasicSR ``{"params_ema": sd}``
#: For ESRGAN-family networks the key names differ by repository as well:
#:   esrgan      - flat, xinntao/ESRGAN "new arch" names (conv_first, RRDB_trunk.N.RDBk.convj,
#:                 trunk_conv, upconv1/2, HRconv, conv_last): ESRGAN, RealSR (Tencent), BSRGAN (KAIR)
#:   basicsr_rrdb - ``{"params_ema": sd}`` with BasicSR RRDBNet names (conv_first, body.N.rdbk.convj,
#:                 conv_body, conv_up1/2, conv_hr, conv_last): Real-ESRGAN
LAYOUTS = ("flat", "params", "params_ema", "esrgan", "basicsr_rrdb")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _arch_class(arch: str):
    """spandrel's network class for an architecture id (ESRGAN, SwinIR, HAT, DAT, ...)."""
    import importlib

    try:
        module = importlib.import_module(f"spandrel.architectures.{arch}")
        return getattr(module, arch)
    except (ImportError, AttributeError):
        raise ConfigError(
            f"spandrel has no architecture class {arch!r} (expected spandrel.architectures.{arch}.{arch})"
        ) from None


def build_network(arch: str, arch_params: dict[str, Any]) -> torch.nn.Module:
    """Build spandrel's ``arch`` network with ``arch_params`` (random weights)."""
    klass = _arch_class(arch)
    accepted = set(inspect.signature(klass.__init__).parameters) - {"self"}
    unknown = sorted(set(arch_params) - accepted)
    if unknown:
        raise ConfigError(f"arch_params for {arch}: unknown key(s) {unknown}; allowed: {sorted(accepted)}")
    return klass(**arch_params)


# -- ESRGAN key layouts ---------------------------------------------------------------------------
_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)$")
_SEQ = re.compile(r"model\.(\d+)\.(weight|bias)$")


def _esrgan_to_official(state: dict[str, torch.Tensor], basicsr: bool) -> dict[str, torch.Tensor]:
    """Rename spandrel's internal (old-arch ``model.N``) ESRGAN keys to an official repository's names."""
    seq = sorted({int(m.group(1)) for k in state if (m := _SEQ.match(k))})
    if not seq or seq[0] != 0:
        raise ValueError("not a spandrel ESRGAN state dict")
    last = seq[-1]  # conv_last; HR conv two before; upsampling convs at 3, 6, ... before that
    names = {0: "conv_first", last: "conv_last", last - 2: "conv_hr" if basicsr else "HRconv"}
    for i, idx in enumerate(s for s in seq if 0 < s < last - 2):
        names[idx] = f"conv_up{i + 1}" if basicsr else f"upconv{i + 1}"
    out: dict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        if m := _RDB.match(key):
            block, rdb, conv, kind = m.groups()
            new = (
                f"body.{block}.rdb{rdb}.conv{conv}.{kind}"
                if basicsr
                else f"RRDB_trunk.{block}.RDB{rdb}.conv{conv}.{kind}"
            )
        elif m := _TRUNK.match(key):
            new = f"{'conv_body' if basicsr else 'trunk_conv'}.{m.group(2)}"
        elif m := _SEQ.match(key):
            new = f"{names[int(m.group(1))]}.{m.group(2)}"
        else:
            raise ValueError(f"unexpected ESRGAN key {key!r}")
        out[new] = value
    return out


def official_state_dict(network: torch.nn.Module, layout: str) -> dict[str, Any]:
    """The object an official checkpoint file of ``layout`` holds for ``network`` (see LAYOUTS)."""
    state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    if layout == "esrgan":
        return _esrgan_to_official(state, basicsr=False)
    if layout == "basicsr_rrdb":
        return {"params_ema": _esrgan_to_official(state, basicsr=True)}
    if layout in ("params", "params_ema"):
        return {layout: state}
    if layout == "flat":
        return state
    raise ConfigError(f"unknown checkpoint layout {layout!r}; known: {', '.join(LAYOUTS)}")


# -- the method -----------------------------------------------------------------------------------
class SpandrelMethod(SRMethod):
    """An SR network loaded by spandrel from its official checkpoint (see the module docstring)."""

    rgb_only = True  # every official checkpoint here is a 3-channel network
    libraries = ("torch", "spandrel")

    def __init__(
        self,
        name: str,
        scale: int,
        *,
        weights: str,
        arch: str,
        layout: str = "flat",
        arch_params: dict[str, Any] | None = None,
        tile: int | None = None,
        tile_overlap: int = 16,
        precision: str = "fp32",
        rebuild_from_arch_params: bool = False,
        **common,
    ):
        super().__init__(name, scale, **common)
        if layout not in LAYOUTS:
            raise ConfigError(f"method {name!r}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"method {name!r}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if tile is not None and (int(tile) < 16 or not 0 <= int(tile_overlap) < int(tile) // 2):
            raise ConfigError(
                f"method {name!r}: need tile >= 16 and 0 <= tile_overlap < tile/2 "
                f"(got tile={tile}, tile_overlap={tile_overlap})"
            )
        self.weights_name, self.arch, self.layout = weights, arch, layout
        self.arch_params = dict(arch_params or {})
        self.tile = None if tile is None else int(tile)
        self.tile_overlap = int(tile_overlap)
        self.rebuild_from_arch_params = bool(rebuild_from_arch_params)
        if self.rebuild_from_arch_params and not self.arch_params:
            raise ConfigError(f"method {name!r}: rebuild_from_arch_params needs arch_params")
        self._weights_path: Path | None = None
        weights_registry.entry(weights)  # an unknown name is a UserError even with random weights

        # random weights only when the file is missing (a file that is there is used even with --random-weights)
        self.random_weights = weights_registry.random_where_missing(
            self.random_weights, lambda: weights_registry.resolve(weights, self.weights_dir)
        )
        if self.random_weights:
            if not self.arch_params:
                raise ConfigError(f"method {name!r}: random_weights needs arch_params in its YAML")
            checkpoint = official_state_dict(build_network(arch, self.arch_params), layout)
            source = f"random {arch} weights in the {layout!r} layout"
        else:
            self._weights_path = weights_registry.resolve(weights, self.weights_dir)  # MissingWeightsError
            checkpoint = load_checkpoint(self._weights_path)
            source = str(self._weights_path)
        self.descriptor = self._describe(checkpoint, source)

        dtype = PRECISIONS[precision]
        if dtype != torch.float32 and self.device.type != "cuda":
            log.info("%s: precision %s applies on CUDA only; using fp32 on %s", name, precision, self.device)
            dtype = torch.float32
        if dtype == torch.float16 and not self.descriptor.supports_half:
            raise ConfigError(f"method {name!r}: {arch} does not support fp16 (spandrel); use bf16 or fp32")
        if dtype == torch.bfloat16 and not self.descriptor.supports_bfloat16:
            raise ConfigError(f"method {name!r}: {arch} does not support bf16 (spandrel); use fp16 or fp32")
        self.dtype = dtype
        self.descriptor.to(self.device)
        if dtype != torch.float32:
            self.descriptor.to(dtype)
        self.descriptor.eval()

    def _describe(self, checkpoint: Any, source: str):
        import spandrel

        state = extract_state_dict(checkpoint)
        try:
            descriptor = spandrel.ModelLoader().load_from_state_dict(state)
        except spandrel.UnsupportedModelError:
            raise CheckpointError(
                f"method {self.name!r}: spandrel does not recognise the network in {source} "
                f"(expected {self.arch}). Check that the weights file is the one named in "
                f"configs/weights.yaml for {self.weights_name!r}."
            ) from None
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"method {self.name!r}: spandrel could not load {source} as {self.arch}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc
        found = descriptor.architecture.id
        if found != self.arch:
            raise CheckpointError(
                f"method {self.name!r}: {source} holds a {found} network, but the method "
                f"expects {self.arch}. Wrong file for weights {self.weights_name!r}?"
            )
        if descriptor.scale != self.scale:
            raise CheckpointError(
                f"method {self.name!r}: {source} is a x{descriptor.scale} {found} network, "
                f"but the method is x{self.scale}."
            )
        if descriptor.input_channels != 3 or descriptor.output_channels != 3:
            raise CheckpointError(
                f"method {self.name!r}: {source} maps {descriptor.input_channels} -> "
                f"{descriptor.output_channels} channels; expected an RGB (3 -> 3) network."
            )
        if self.rebuild_from_arch_params:
            descriptor = self._rebuild(descriptor, state, source)
        return descriptor

    def _rebuild(self, detected, state: dict[str, torch.Tensor], source: str):
        """The detected descriptor with its network replaced by one built from ``arch_params`` and
        loaded strictly from ``state`` (hyper-parameters spandrel cannot deduce come from the YAML)."""
        from spandrel import ImageModelDescriptor

        network = build_network(self.arch, self.arch_params)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"method {self.name!r}: {source} does not fit {self.arch} built from the YAML's "
                f"arch_params: {str(exc).splitlines()[0]}"
            ) from exc
        return ImageModelDescriptor(
            network,
            state,
            architecture=detected.architecture,
            purpose=detected.purpose,
            tags=list(detected.tags),
            supports_half=detected.supports_half,
            supports_bfloat16=detected.supports_bfloat16,
            scale=detected.scale,
            input_channels=detected.input_channels,
            output_channels=detected.output_channels,
            size_requirements=detected.size_requirements,
        )

    # -- what the runner needs --------------------------------------------------------------------
    def weight_files(self) -> dict[str, Path]:
        return {} if self._weights_path is None else {"network": self._weights_path}

    # -- inference ----------------------------------------------------------------------------------
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        out = self.descriptor(x.to(self.device, self.dtype))
        return out.to(torch.float32)

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h, w = x.shape[-2:]
            if self.tile is None or (h <= self.tile and w <= self.tile):
                return self._run(x)
            return self._tiled(x)

    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Run overlapping tiles of at most ``tile`` x ``tile`` LR pixels; average the overlaps."""
        s, tile, overlap = self.scale, self.tile, self.tile_overlap
        b, c, h, w = x.shape
        out = torch.zeros(b, c, h * s, w * s, dtype=torch.float32, device=self.device)
        weight = torch.zeros(1, 1, h * s, w * s, dtype=torch.float32, device=self.device)

        def starts(size: int) -> list[int]:
            if size <= tile:
                return [0]
            step = tile - overlap
            positions = list(range(0, size - tile, step)) + [size - tile]
            return sorted(set(positions))

        for top in starts(h):
            for left in starts(w):
                patch = x[..., top : top + tile, left : left + tile]
                y = self._run(patch)
                ph, pw = patch.shape[-2:]
                out[..., top * s : (top + ph) * s, left * s : (left + pw) * s] += y
                weight[..., top * s : (top + ph) * s, left * s : (left + pw) * s] += 1.0
        return out / weight

    def __repr__(self) -> str:
        src = "random weights" if self.random_weights else str(self._weights_path)
        return f"SpandrelMethod(name={self.name!r}, arch={self.arch}, x{self.scale}, {src}, device={self.device})"


__all__ = ["SpandrelMethod", "official_state_dict", "build_network", "LAYOUTS"]
