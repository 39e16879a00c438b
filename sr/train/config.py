"""Typed training configs: a YAML in ``configs/train/`` -> :class:`TrainConfig` (dataclasses).

Top-level sections are ``data``, ``model``, ``optim``, ``train`` and ``objective``; every section is
checked against its dataclass and an unknown key is a :class:`~sr.errors.ConfigError` naming the file,
the section and the closest allowed key. ``objective`` holds ``kind`` (resshift | sinsr | difiisr |
upsr | hfdiff) and that objective's options (checked by the objective itself). A config may name
``base: other.yaml`` (relative to its own folder): its sections are deep-merged under this one's.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr.config import CONFIG_DIR, matches_type, read_config, type_name
from sr.errors import ConfigError, check_keys
from sr.registry import Registry
from sr.vocab import DEGRADATION_DEFAULT

TRAIN_CONFIG_DIR = CONFIG_DIR / "train"
#: training configs: configs/train/<name>.yaml or a YAML path (sections checked by :func:`load_config`)
TRAIN_CONFIGS = Registry("training config", configs="train", keys=None)


@dataclass
class DataConfig:
    dataset: str = "synthir_train"  # any harness data set (HR frames are used; LR is re-made)
    val_dataset: str | None = "synthir_val"
    max_images: int | None = None  # HR frames cached in memory (None: all)
    val_images: int = 4
    patch_size: int = 64  # HR crop; the LR patch is patch_size / scale
    batch_size: int = 8  # per process and micro-batch
    scale: int = 4
    degradation: str = DEGRADATION_DEFAULT
    #: a randomised mix: each training patch draws one of these (NAME or NAME@SEVERITY of configs/degradations/)
    #: and a seed from the run's generator, and is degraded by ``degrader``; empty: ``degradation`` for every patch
    degradations: list[str] = field(default_factory=list)
    degrader: str = "downstream.degradations:degrade"  # (hr, label, scale=, seed=) -> LR, module:function
    flips: bool = True  # random horizontal/vertical flips
    rot90: bool = False
    loader: str = "downstream.datasets:load_dataset"  # name -> FrameSource (sr.train.data), module:function


@dataclass
class ModelConfig:
    #: UNetModelSwin keyword arguments (+ arch: sr.builders.UNET_ARCHS)
    unet: dict[str, Any] = field(default_factory=dict)
    first_stage: str = "pixel_unshuffle"  # pixel_unshuffle (pixel space, factor = scale) | vq
    vq: dict[str, Any] | None = None  # VQModelTorch kwargs when first_stage == vq
    vq_weights: str | None = None  # registry name or path of the frozen VQ
    schedule: str | dict[str, Any] = "difiisr_t15"  # preset name or ScheduleConfig fields
    input_scaling: str = "latent"  # latent | upsr
    init_from: str | None = None  # checkpoint (path or registry name) to start from
    pad_multiple: int = 16  # LR padding multiple for validation / inference


@dataclass
class OptimConfig:
    lr: float = 5e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    schedule: str = "constant"  # constant | cosine | step
    lr_min: float = 0.0  # cosine floor
    milestones: list[int] = field(default_factory=list)  # step schedule
    gamma: float = 0.5
    grad_clip: float | None = None


@dataclass
class LoopConfig:
    iterations: int = 1000
    grad_accum: int = 1
    ema_rate: float = 0.999
    amp: str = "bf16"  # bf16 | fp16 | none (CUDA only; CPU always fp32)
    seed: int = 0
    log_every: int = 10
    val_every: int = 0  # 0: only at the end
    save_every: int = 0  # 0: only at the end
    val_mode: str | None = None  # one_step | ddim | stochastic; None: as the run's method samples (else one_step)
    tensorboard: bool = True  # when the package is installed
    progress: bool = True
    threads: int | None = None  # torch.set_num_threads on CPU


@dataclass
class TrainConfig:
    name: str
    out_dir: str
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    train: LoopConfig
    objective: dict[str, Any]
    weights_dir: str | None = None
    random_weights: bool = False  # feature networks (VGG/SAM/...) untrained: results flagged
    source: str = ""
    #: how the finished run is sampled as a method (sr.train.run_method): ``like`` (a method YAML: factory and
    #: sampler options), ``options`` (overrides, e.g. steps_mode), ``mismatch`` (why a sampler that differs from
    #: the objective's is intended; without it such a config is refused)
    method: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": LoopConfig}
TOP_KEYS = {
    "name",
    "out_dir",
    "objective",
    "weights_dir",
    "random_weights",
    "base",
    "description",
    "method",
    *_SECTIONS,
}
_METHOD_KEYS = {"like", "options", "mismatch", "paper_name"}


#: the smallest value of numeric fields (a value below it is a mistake, not "off")
_MINIMUM = {
    "data.max_images": 1,
    "data.val_images": 0,
    "data.patch_size": 1,
    "data.batch_size": 1,
    "data.scale": 1,
    "optim.lr": 0,
    "optim.weight_decay": 0,
    "optim.warmup_steps": 0,
    "optim.lr_min": 0,
    "optim.gamma": 0,
    "optim.grad_clip": 0,
    "train.iterations": 1,
    "train.grad_accum": 1,
    "train.ema_rate": 0,
    "train.log_every": 0,
    "train.val_every": 0,
    "train.save_every": 0,
    "train.threads": 1,
    "model.pad_multiple": 1,
}
_MAXIMUM = {"train.ema_rate": 1}
_CHOICES = {
    "model.first_stage": ("pixel_unshuffle", "vq"),
    "model.input_scaling": ("latent", "upsr"),
    "optim.schedule": ("constant", "cosine", "step"),
    "train.amp": ("bf16", "fp16", "none"),
    "train.val_mode": ("one_step", "ddim", "stochastic", None),
}


def _check_section(path: Path, name: str, cls: type, section: dict[str, Any]) -> None:
    """Types, ranges and choices of one section's values: a ConfigError names the key and the value."""
    hints = typing.get_type_hints(cls)
    for key, value in section.items():
        dotted = f"{name}.{key}"
        if not matches_type(value, hints[key]):
            raise ConfigError(f"{path}: {dotted} = {value!r} has the wrong type (expected {type_name(hints[key])})")
        if dotted in _MINIMUM and value is not None and value < _MINIMUM[dotted]:
            raise ConfigError(f"{path}: {dotted} = {value!r} must be >= {_MINIMUM[dotted]}")
        if dotted in _MAXIMUM and value is not None and value > _MAXIMUM[dotted]:
            raise ConfigError(f"{path}: {dotted} = {value!r} must be <= {_MAXIMUM[dotted]}")
        if dotted in _CHOICES and value not in _CHOICES[dotted]:
            raise ConfigError(f"{path}: {dotted} = {value!r} must be one of {', '.join(_CHOICES[dotted])}")


def load_config(name_or_path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read, merge (``base:``), apply dotted ``overrides`` ({"train.iterations": 10}) and type-check."""
    path = TRAIN_CONFIGS.path(str(name_or_path)).resolve()
    data = read_config(path)
    check_keys(str(path), data, TOP_KEYS)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        check_keys(f"--set {dotted}", {parents[0] if parents else last: None}, TOP_KEYS - {"base"})
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(parents)} is a value, not a section")
        node[last] = value
    data.pop("description", None)
    sections = {}
    for key, cls in _SECTIONS.items():
        section = data.get(key) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: section {key!r} must be a mapping")
        check_keys(f"{path}: {key}", section, {f.name for f in dataclasses.fields(cls)})
        _check_section(path, key, cls, section)
        sections[key] = cls(**section)
    if sections["model"].first_stage == "vq" and not sections["model"].vq:
        raise ConfigError(f"{path}: model.first_stage is 'vq' but model.vq (the VQ autoencoder's options) is not set")
    objective = data.get("objective")
    if not isinstance(objective, dict) or "kind" not in objective:
        raise ConfigError(f"{path}: 'objective' must be a mapping with a 'kind'")
    method = data.get("method")
    if method is not None:
        if not isinstance(method, dict) or not isinstance(method.get("like"), str):
            raise ConfigError(f"{path}: 'method' must be a mapping with 'like' (the method YAML the run is sampled as)")
        check_keys(f"{path}: method", method, _METHOD_KEYS)
        if not isinstance(method.get("options") or {}, dict):
            raise ConfigError(f"{path}: method.options must be a mapping")
    name = data.get("name", path.stem)
    out_dir = data.get("out_dir", f"runs/{name}")
    for key, value in (("name", name), ("out_dir", out_dir), ("weights_dir", data.get("weights_dir") or "")):
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} = {value!r} must be a string")
    return TrainConfig(
        name=name,
        out_dir=out_dir,
        objective=dict(objective),
        weights_dir=data.get("weights_dir"),
        random_weights=bool(data.get("random_weights", False)),
        source=str(path),
        method=dict(method) if method is not None else None,
        **sections,
    )
