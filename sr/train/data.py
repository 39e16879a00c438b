"""Paired training patches from any harness data set: HR frames cached in memory, random aligned
crops and flips, LR made on the fly with the harness degradation (``sr.degrade``), or with one drawn per patch
from ``data.degradations`` (a randomised mix of the benchmark's own degradation definitions, through
``data.degrader``).

The frames come through :class:`FrameSource`, the interface sr defines for data sets: ``data.loader`` names a
function (``module:function``; default the harness's ``downstream.datasets:load_dataset``) that turns a data-set
name into an object with ``ids()`` and ``load(id).hr``; sr itself imports no data-set code.

Batches are drawn with replacement from an explicit ``torch.Generator`` (seeded per process rank);
its state is part of every checkpoint, so a resumed run sees exactly the batches an uninterrupted
run would. (With in-memory random crops this replaces a ``DistributedSampler``: each rank draws
independent crops from its own stream.)
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from tqdm import tqdm

from sr.config import import_factory
from sr.degrade import degrade, modcrop
from sr.errors import ConfigError
from sr.train.config import DataConfig


class FrameSource(Protocol):
    """What training needs of a data set: its sample ids and, per id, a sample whose ``hr`` is [C, H, W] in [0, 1]."""

    def ids(self) -> list[str]: ...

    def load(self, sample_id: str) -> Any: ...


def _three(x: torch.Tensor) -> torch.Tensor:
    return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


def load_hr_frames(
    name: str, limit: int | None, scale: int, progress: bool = False, loader: str = DataConfig.loader
) -> list[torch.Tensor]:
    ds: FrameSource = import_factory(loader, "data.loader")(name)
    ids = ds.ids()[:limit] if limit else ds.ids()
    frames = []
    for sid in tqdm(ids, desc=f"loading {name}", disable=not progress, leave=False):
        sample = ds.load(sid)
        if sample.hr is None:
            raise ConfigError(f"data set {name!r} has no HR frames (sample {sid}); it cannot train SR")
        frames.append(_three(modcrop(sample.hr.float(), scale)))
    if not frames:
        raise ConfigError(f"data set {name!r} is empty")
    return frames


class PairedPatches:
    """``batch(generator) -> {"lr": [B,3,p/s,p/s], "hr": [B,3,p,p]}`` in [-1, 1]."""

    def __init__(self, cfg: DataConfig, progress: bool = False):
        self.cfg = cfg
        if cfg.patch_size % cfg.scale:
            raise ConfigError(f"data.patch_size {cfg.patch_size} must be a multiple of data.scale {cfg.scale}")
        self.frames = load_hr_frames(cfg.dataset, cfg.max_images, cfg.scale, progress, cfg.loader)
        small = [f.shape for f in self.frames if min(f.shape[-2:]) < cfg.patch_size]
        if small:
            raise ConfigError(f"data.patch_size {cfg.patch_size} is larger than frames of shape {small[0]}")
        self.degrader = import_factory(cfg.degrader, "data.degrader") if cfg.degradations else None
        for label in cfg.degradations:  # every name and severity checked before the first step
            self.degrader(torch.zeros(3, cfg.scale, cfg.scale), label, scale=cfg.scale)

    def crop(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, s = self.cfg, self.cfg.scale
        hr = self.frames[int(torch.randint(len(self.frames), (1,), generator=g))]
        h, w = hr.shape[-2:]
        i = int(torch.randint((h - cfg.patch_size) // s + 1, (1,), generator=g)) * s
        j = int(torch.randint((w - cfg.patch_size) // s + 1, (1,), generator=g)) * s
        patch = hr[:, i : i + cfg.patch_size, j : j + cfg.patch_size]
        if cfg.flips:
            flips = torch.randint(2, (2,), generator=g)
            if flips[0]:
                patch = patch.flip(-1)
            if flips[1]:
                patch = patch.flip(-2)
        if cfg.rot90:
            patch = torch.rot90(patch, int(torch.randint(4, (1,), generator=g)), dims=(-2, -1))
        patch = patch.contiguous()
        if self.degrader is not None:  # the mix: label and seed drawn from the run's generator (exact resume)
            label = cfg.degradations[int(torch.randint(len(cfg.degradations), (1,), generator=g))]
            seed = int(torch.randint(2**31 - 1, (1,), generator=g))
            return self.degrader(patch, label, scale=s, seed=seed), patch
        return degrade(patch, s, cfg.degradation), patch

    def batch(self, g: torch.Generator, size: int | None = None) -> dict[str, torch.Tensor]:
        pairs = [self.crop(g) for _ in range(size or self.cfg.batch_size)]
        lr = torch.stack([p[0] for p in pairs]) * 2 - 1
        hr = torch.stack([p[1] for p in pairs]) * 2 - 1
        return {"lr": lr, "hr": hr}


def validation_pairs(cfg: DataConfig, progress: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(lr [1,3,h,w], hr [1,3,H,W]) in [0, 1] for the first ``val_images`` frames of ``val_dataset``."""
    if not cfg.val_dataset or cfg.val_images <= 0:
        return []
    frames = load_hr_frames(cfg.val_dataset, cfg.val_images, cfg.scale, progress, cfg.loader)
    return [(degrade(f, cfg.scale, cfg.degradation)[None], f[None]) for f in frames]
