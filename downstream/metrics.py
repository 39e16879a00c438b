"""Image-quality metrics, a registry over pyiqa (``configs/metrics.yaml``).

Protocol (the official DifIISR evaluation): PSNR and SSIM on the Y channel of YCbCr, no border
crop; LPIPS with AlexNet v0.1; CLIP-IQA, MUSIQ and NIQE as pyiqa defines them. Single-channel
frames are replicated to three equal channels first, exactly as the official 3-channel gray PNGs
are, so Y = 16/255 + 219/255 * gray.

Weights are never downloaded: every file a metric needs is an entry of ``configs/weights.yaml``
resolved in the weights directory (``pyiqa/...`` for pyiqa's own files, ``torch_hub/...`` for the
torchvision AlexNet and the CLIP RN50 archive). A missing file raises MissingWeightsError before
anything is built, and any download pyiqa, torchvision or CLIP would attempt is turned into that
same error. ``random_weights=True`` builds the networks with random weights instead (tests only);
the metric then carries the ``random_weights`` flag, which every table shows.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from sr import weights as weights_registry
from sr.config import CONFIG_DIR, read_yaml
from sr.errors import ConfigError, MissingWeightsError, UnknownNameError, check_keys

_SPEC_KEYS = {"pyiqa", "options", "reference", "higher_better", "files"}


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


def list_metrics() -> list[str]:
    return list(metric_specs())


def _refuse_download(url: str, dst: Any = None, *args: Any, **kwargs: Any):
    name = os.path.basename(str(url).split("?")[0])
    raise MissingWeightsError(name, dst or "(the weights directory)", url)


@contextlib.contextmanager
def _offline_hub(hub_dir: Path) -> Iterator[None]:
    """Point torch.hub (torchvision weights, CLIP) at ``hub_dir`` and turn downloads into errors."""
    import pyiqa.archs.clip_model as clip_model
    import pyiqa.utils.download_util as pyiqa_download

    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub_dir))
    try:
        with mock.patch.object(torch.hub, "download_url_to_file", _refuse_download), \
                mock.patch.object(pyiqa_download, "download_url_to_file", _refuse_download), \
                mock.patch.object(clip_model, "_download", lambda url, root: _clip_file(url, root)):
            yield
    finally:
        torch.hub.set_dir(previous)


def _clip_file(url: str, root: str) -> str:
    path = Path(root) / os.path.basename(url)
    if not path.is_file():
        _refuse_download(url, path)
    return str(path)


@contextlib.contextmanager
def _random_networks(spec: MetricSpec) -> Iterator[dict[str, Any]]:
    """Build the metric's networks with random weights (explicit test option)."""
    import pyiqa.archs.clip_model as clip_model
    import pyiqa.archs.clipiqa_arch as clipiqa_arch
    import pyiqa.archs.lpips_arch as lpips_arch
    import torchvision

    def random_clip(*args: Any, **kwargs: Any):
        torch.manual_seed(0)
        return clip_model.CLIP(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64, vision_patch_size=None,
                               context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                               transformer_layers=12).float()

    build_alexnet = torchvision.models.alexnet

    def random_alexnet(*args: Any, **kwargs: Any):
        torch.manual_seed(0)
        return build_alexnet(weights=None)

    with mock.patch.object(clipiqa_arch, "load", random_clip), \
            mock.patch.object(lpips_arch.models, "alexnet", random_alexnet):
        yield {"pretrained": False} if spec.pyiqa in ("lpips", "musiq") else {}


class QualityMetric:
    """One pyiqa metric; call it on float [B,C,H,W] in [0,1] (and a reference for FR metrics)."""

    def __init__(self, name: str, *, device: str = "cpu", weights_dir: str | os.PathLike | None = None,
                 random_weights: bool = False, niqe_params: str | os.PathLike | None = None):
        specs = metric_specs()
        if name not in specs:
            raise UnknownNameError("metric", name, specs)
        self.spec = specs[name]
        self.name = name
        self.random_weights = bool(random_weights) and bool(self.spec.files)
        self.device = torch.device(device)
        options = dict(self.spec.options)
        root = weights_registry.weights_dir(weights_dir)
        self.weight_files: dict[str, Path] = {}
        if niqe_params is not None and self.spec.pyiqa == "niqe":
            self.weight_files["pretrained_model_path"] = Path(niqe_params)
        elif not self.random_weights:
            for role, entry in self.spec.files.items():
                self.weight_files[role] = weights_registry.resolve(entry, weights_dir)
        if "pretrained_model_path" in self.weight_files:
            options["pretrained_model_path"] = str(self.weight_files["pretrained_model_path"])
        import pyiqa

        with contextlib.ExitStack() as stack:
            stack.enter_context(_offline_hub(root / "torch_hub"))
            if self.random_weights:
                options.update(stack.enter_context(_random_networks(self.spec)))
            self.model = pyiqa.create_metric(self.spec.pyiqa, device=self.device, as_loss=False, **options)
        self.model.eval()

    @property
    def flags(self) -> tuple[str, ...]:
        return ("random_weights",) if self.random_weights else ()

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
                raise ValueError(f"metric {self.name}: image {tuple(image.shape)} vs reference {tuple(reference.shape)}")
            score = self.model(image, reference)
        else:
            score = self.model(image)
        return score.detach().float().reshape(-1).cpu()


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
