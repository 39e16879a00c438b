"""Image-quality metrics, a registry over pyiqa (``configs/metrics.yaml``).

Protocol (the official DifIISR evaluation): PSNR and SSIM on the Y channel of YCbCr, no border
crop; LPIPS with AlexNet v0.1; CLIP-IQA, MUSIQ and NIQE as pyiqa defines them. Single-channel
frames are replicated to three equal channels first, exactly as the official 3-channel gray PNGs
are, so Y = 16/255 + 219/255 * gray.

Weights are never downloaded and never unpickled by a library: pyiqa's ``load_pretrained_network``
and torchvision's ``load_state_dict_from_url`` read files with ``torch.load(weights_only=False)``,
so no file is handed to them. Every file a metric needs is an entry of ``configs/weights.yaml``
resolved in the weights directory and read by :mod:`sr.checkpoint` (``weights_only=True`` or
safetensors); the networks are then built without weights and given the loaded state dicts:

- ``lpips``: :class:`sr.guidance.perceptual.LPIPSLoss` with the AlexNet trunk (the same LPIPS v0.1
  computation as pyiqa's, tested equal to it), weights ``torchvision_alexnet`` + ``pyiqa_lpips_alex``;
- ``musiq``: ``pyiqa.create_metric("musiq", pretrained=False)`` and a strict ``load_state_dict``;
- ``clipiqa``: pyiqa builds CLIP only through its own loader, which opens a TorchScript archive by
  path and rebuilds CLIP from the archive's ``state_dict()``. It is handed an archive that this module
  writes into a private temporary folder: a module tree holding nothing but the tensors the safe
  loader read (``clip_rn50_state``: OpenAI's TorchScript RN50 converted once by ``python -m sr.weights
  convert clip_rn50``, which checks the archive's sha256 first), so no foreign code is ever loaded;
- ``niqe``: pyiqa reads its MATLAB parameter file with ``scipy.io.loadmat`` (no code in .mat files).

A missing file raises MissingWeightsError before anything is built. ``random_weights=True`` builds
the networks with seeded random weights instead when a file is missing (tests only; files that are
there are used); the metric then carries the ``random_weights`` flag, which every table shows.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from sr import weights as weights_registry
from sr.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, load_into
from sr.config import CONFIG_DIR, read_yaml
from sr.errors import ConfigError, UserError, check_keys
from sr.registry import Registry
from sr.vocab import FLAG_RANDOM_WEIGHTS

_SPEC_KEYS = {"pyiqa", "options", "reference", "higher_better", "files"}
#: parameter files pyiqa may open itself: formats that hold data only (NIQE's MATLAB file)
_PARAMETER_SUFFIXES = (".mat",)
#: CLIP RN50 as pyiqa's CLIP-IQA uses it (for random weights: the shapes of OpenAI's RN50)
_CLIP_RN50 = dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                  vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=512,
                  transformer_heads=8, transformer_layers=12)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    pyiqa: str
    reference: bool
    higher_better: bool
    options: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def metric_specs() -> dict[str, MetricSpec]:
    path = CONFIG_DIR / "metrics.yaml"
    specs = {}
    for name, spec in read_yaml(path).items():
        check_keys(f"{path}: {name}", spec, _SPEC_KEYS)
        if "pyiqa" not in spec:
            raise ConfigError(f"{path}: metric {name!r} needs a 'pyiqa' name")
        specs[name] = MetricSpec(name=name, pyiqa=spec["pyiqa"], reference=bool(spec.get("reference", False)),
                                 higher_better=bool(spec.get("higher_better", True)),
                                 options=dict(spec.get("options") or {}), files=dict(spec.get("files") or {}))
    return specs


def _add_metrics(registry: Registry) -> None:
    for name, spec in metric_specs().items():
        registry.add(name, QualityMetric, **{k: v for k, v in asdict(spec).items() if k != "name"})


#: quality metrics by name (configs/metrics.yaml); each entry's metadata is its MetricSpec's fields
METRICS = Registry("metric", populate=_add_metrics)


def list_metrics() -> list[str]:
    return METRICS.names()


# ----- network builders: (options, files by role or None for random weights) -> module(image[, ref]) -------

def _pyiqa(name: str, options: dict[str, Any]) -> torch.nn.Module:
    import pyiqa

    return pyiqa.create_metric(name, device="cpu", as_loss=False, **options)


def _build_lpips(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    from sr.guidance.perceptual import LPIPSLoss

    if options.get("net", "alex") != "alex" or str(options.get("version", "0.1")) != "0.1":
        raise ConfigError(f"lpips: only net: alex, version: '0.1' is supported, got {options}")
    torch.manual_seed(0)
    return LPIPSLoss(weights_dir=weights_dir, random_weights=files is None, trunk="alex")


def _build_musiq(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    torch.manual_seed(0)
    metric = _pyiqa("musiq", {**options, "pretrained": False})
    if files is not None:
        load_into(metric.net, files["pretrained_model_path"], "pyiqa MUSIQ")
    return metric


def _build_clipiqa(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    if files is None:
        import pyiqa.archs.clip_model as clip_model

        torch.manual_seed(0)
        state = clip_model.CLIP(**_CLIP_RN50).state_dict()
    else:
        state = extract_state_dict(load_checkpoint(files["backbone"]), keys=())
    with tempfile.TemporaryDirectory(prefix="irsr-clip-") as private:  # mode 0700: nobody else can swap it
        staged = Path(private) / "clip_tensors.pt"
        torch.jit.save(torch.jit.script(_tensor_tree(state)), staged)
        try:
            return _pyiqa("clipiqa", {**options, "backbone": str(staged)})
        except (RuntimeError, KeyError) as exc:  # pyiqa's CLIP builder on tensors of the wrong shape / keys
            raise CheckpointError(f"{files['backbone'] if files else 'random CLIP'}: not a CLIP RN50 state dict "
                                  f"({str(exc).splitlines()[0]})") from None


def _tensor_tree(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A module whose ``state_dict()`` is ``state`` (dotted keys become nested modules; no code of its own)."""
    root = torch.nn.Module()
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for part in path:
            if part not in node._modules:
                node.add_module(part, torch.nn.Module())
            node = node._modules[part]
        node.register_buffer(leaf, value)
    return root


_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Path] | None, Any], torch.nn.Module]] = {
    "lpips": _build_lpips, "musiq": _build_musiq, "clipiqa": _build_clipiqa}


class QualityMetric:
    """One pyiqa metric; call it on float [B,C,H,W] in [0,1] (and a reference for FR metrics)."""

    libraries = ("pyiqa", "torch")  # distributions that compute the scores (in their cache key)

    def __init__(self, name: str, *, device: str = "cpu", weights_dir: str | os.PathLike | None = None,
                 random_weights: bool = False, niqe_params: str | os.PathLike | None = None):
        METRICS.get(name)  # an unknown name: UnknownNameError with "did you mean"
        self.spec = metric_specs()[name]
        self.name = name
        # random networks only when a weights file is missing (files that are there are always used)
        self.random_weights = bool(self.spec.files) and weights_registry.random_where_missing(
            random_weights, lambda: [weights_registry.resolve(e, weights_dir) for e in self.spec.files.values()])
        self.device = torch.device(device)
        options = dict(self.spec.options)
        self.weight_files: dict[str, Path] = {}
        if niqe_params is not None and self.spec.pyiqa == "niqe":
            self.weight_files["pretrained_model_path"] = Path(niqe_params)
        elif not self.random_weights:
            for role, entry in self.spec.files.items():
                self.weight_files[role] = weights_registry.resolve(entry, weights_dir)
        builder = _BUILDERS.get(self.spec.pyiqa)
        if builder is None:  # no network: pyiqa builds it, handed only parameter files it cannot unpickle
            for role, path in self.weight_files.items():
                if role != "pretrained_model_path" or path.suffix.lower() not in _PARAMETER_SUFFIXES:
                    raise ConfigError(f"metric {name!r}: pyiqa would read {path} ({role}) with an unrestricted "
                                      f"unpickler; give it a builder in downstream/metrics.py that loads the file "
                                      f"through sr.checkpoint")
                options[role] = str(path)
        try:
            if builder is None:
                model = _pyiqa(self.spec.pyiqa, options)
            else:
                model = builder(options, None if self.random_weights else self.weight_files, weights_dir)
        except Exception as exc:  # parsers of weights / parameter files raise many types (scipy: MatReadError)
            if not self.weight_files or isinstance(exc, UserError):
                raise  # nothing of the user's was read (a bug), or already a clear error
            files = ", ".join(str(p) for p in self.weight_files.values())
            raise CheckpointError(f"metric {name!r}: cannot use {files}: {type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no details'}") from exc
        self.model = model.to(self.device).eval()

    @property
    def flags(self) -> tuple[str, ...]:
        return (FLAG_RANDOM_WEIGHTS,) if self.random_weights else ()

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "pyiqa": self.spec.pyiqa, "options": self.spec.options,
                "random_weights": self.random_weights,
                "weights": {role: weights_registry.sha256_of(p) for role, p in self.weight_files.items()}}

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Per-image scores, shape [B]."""
        image = _three_channels(image).to(self.device)
        if self.spec.reference:
            if reference is None:
                raise ValueError(f"metric {self.name} needs a reference image")
            reference = _three_channels(reference).to(self.device)
            if reference.shape != image.shape:
                raise ValueError(f"metric {self.name}: image {tuple(image.shape)} "
                                 f"vs reference {tuple(reference.shape)}")
            score = self.model(image, reference)
        else:
            score = self.model(image)
        return score.detach().float().reshape(-1).cpu()


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
