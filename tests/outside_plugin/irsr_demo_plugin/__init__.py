"""One plug-in of every kind, registered the way docs/extending.md says (``sr.plugins.register``); irsr-bench finds
this module through its entry point (group ``irsr.plugins``), nothing in irsr-bench names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from downstream.datasets.base import Dataset
from downstream.sample import Sample
from downstream.tasks import MetricRow, ResultMetric, Task, TaskItem
from sr.base import SRMethod
from sr.plugins import register
from sr.train.objectives.base import Objective


@register("method", "twice_nearest", scale=4, paper_name="Twice-Nearest", family="interpolation")
class TwiceNearest(SRMethod):
    """Nearest-neighbour x``scale`` (a method without weights)."""

    has_weights = False

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


@register("dataset-kind", "ramps")
class Ramps(Dataset):
    """``ramps:N``: N grey 32x32 frames, a horizontal ramp whose brightness grows with the frame's number."""

    def __init__(self, name: str, *, root: str, **common: Any):
        super().__init__(name, **common)
        self.count = int(root)

    def ids(self) -> list[str]:
        return [f"ramp{i}" for i in range(self.count)]

    def load(self, sample_id: str, labels: bool = True) -> Sample:
        level = int(sample_id[4:]) + 1
        ramp = np.round(np.linspace(0, 40 * level, 32)).clip(0, 255) / 255.0
        hr = np.tile(ramp, (32, 1))[..., None].astype(np.float32)
        return self.make_sample(sample_id, hr, fingerprint=f"ramps-{sample_id}")


def mean_level(image: torch.Tensor) -> torch.Tensor:
    """Mean intensity per image ([B, C, H, W] in [0, 1] -> [B])."""
    return image.float().mean(dim=(1, 2, 3))


register("metric", "mean_level", mean_level, reference=False, higher_better=True, range=[0, 1])


@register("task", "bright_fraction", options={"threshold": 0.1}, description="fraction of pixels over a threshold")
class BrightFraction(Task):
    """Share of the SR image's pixels brighter than ``threshold``, per image and overall (needs no labels)."""

    name = "bright_fraction"
    metrics = (ResultMetric("bright", higher_better=True),)

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        device: str = "cpu",
        weights_dir: str | None = None,
        random_weights: bool = False,
    ):
        self.threshold = float(threshold)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}

    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        fractions = []
        for item in items:
            with Image.open(item.image) as img:
                pixels = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
            fractions.append(float((pixels > self.threshold).mean()))
        rows = [MetricRow("bright", f, image=item.id) for f, item in zip(fractions, items)]
        return [*rows, MetricRow("bright", float(np.mean(fractions)), n=len(items))]


@register("objective", "plain_l1")
class PlainL1(Objective):
    """L1 between the network's prediction at the last step and the HR latent."""

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        hr = self.encode(batch["hr"])
        loss = (self.net(self.ctx.model, hr, self.t_full(hr.shape[0], 0), batch["lr"]) - hr).abs().mean()
        return loss, {"l1": float(loss)}


@register("guidance-term", "mean_shift", group="visual")
class MeanShift(nn.Module):
    """Per-sample absolute difference of the mean intensities ([B])."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred.mean(dim=(1, 2, 3)) - target.mean(dim=(1, 2, 3))).abs()
