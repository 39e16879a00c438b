"""The one sample type that flows from data sets to SR methods and downstream tasks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

IGNORE_INDEX = 255  # label-mask value that no metric counts

#: the label fields of a Sample; tasks name the ones they read (``Task.labels``), data sets give their classes
LABEL_BOXES = "boxes"
LABEL_MASK = "mask"
LABEL_FIELDS = (LABEL_BOXES, LABEL_MASK)


@dataclass
class Sample:
    """One frame: LR input, HR reference and optional labels, all at HR resolution.

    ``lr``/``hr`` are float32 ``[C, h, w]`` / ``[C, H, W]`` tensors in [0, 1] (C in {1, 3});
    ``boxes`` is float32 ``(N, 5)`` = class id, x1, y1, x2, y2 in HR pixels; ``mask`` is uint8
    ``(H, W)`` class ids with ``IGNORE_INDEX`` for pixels no metric counts. ``fingerprint`` changes
    whenever the source files change, so caches keyed on it never serve stale results. ``lr`` is None only
    when the data set pairs official LR files and this frame has none; ``lr_missing`` then says which file is
    missing (methods that read LR fail on that frame; the ``hr`` reference row still scores).
    """

    id: str
    lr: torch.Tensor | None
    hr: torch.Tensor | None = None
    boxes: np.ndarray | None = None
    mask: np.ndarray | None = None
    source: str = ""
    fingerprint: str = ""
    lr_missing: str = ""

    @property
    def channels(self) -> int:
        """Channels of the frame (LR and HR have the same number)."""
        return int((self.lr if self.lr is not None else self.hr).shape[0])
