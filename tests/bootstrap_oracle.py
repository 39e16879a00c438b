"""The bootstrap replicates as they were computed before the vectorised path: each task's rows recomputed from
scratch on every drawn image list, one list at a time (the test oracle of ``Task.replicates``; not in the package).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from downstream.detection.metrics import image_stats, score_images, size_ap_images, size_image_stats
from downstream.detection.task import rows_from_scores as detection_rows
from downstream.segmentation.metrics import ConfusionAccumulator, SmallTargetAccumulator
from downstream.segmentation.task import rows_from_scores as segmentation_rows


def _collect(rows_per_draw: list[list]) -> dict[tuple[str, str], np.ndarray]:
    out: dict[tuple[str, str], np.ndarray] = {}
    for r, rows in enumerate(rows_per_draw):
        for row in rows:
            out.setdefault((row.metric, row.cls), np.full(len(rows_per_draw), np.nan))[r] = row.value
    return out


def detection_replicates(state: dict[str, Any], draws: Any) -> dict[tuple[str, str], np.ndarray]:
    """Per drawn list: the drawn images' matches concatenated in draw order, COCO AP (or DetMetrics) and size AP."""
    names = tuple(state["classes"])
    ids = list(state["images"])
    pairs = [
        (np.asarray(v["pred"], np.float64).reshape(-1, 6), np.asarray(v["gt"], np.float64).reshape(-1, 5))
        for v in state["images"].values()
    ]
    stats = [image_stats(pred, gt) for pred, gt in pairs]
    sizes = [size_image_stats(pred, gt, len(names)) for pred, gt in pairs]
    position = {image_id: k for k, image_id in enumerate(ids)}
    rows = []
    for draw in draws:
        picked = [position[i] for i in draw if i in position]
        scores = score_images([stats[k] for k in picked], names, state["ap_method"])
        scores.sizes = size_ap_images([sizes[k] for k in picked], len(names))
        rows.append(detection_rows(scores, names))
    return _collect(rows)


def segmentation_replicates(state: dict[str, Any], draws: Any) -> dict[tuple[str, str], np.ndarray]:
    """Per drawn list: the sum of the drawn images' confusion matrices (and merged small-target counts)."""
    names, ignored = tuple(state["classes"]), tuple(state["ignored"])
    images = state["images"]
    position = {image_id: k for k, image_id in enumerate(images)}
    matrices = np.array([v["confusion"] for v in images.values()], dtype=np.int64).reshape(-1, len(names), len(names))
    small = [v.get("small_target") for v in images.values()]
    rows = []
    for draw in draws:
        picked = [position[i] for i in draw if i in position]
        acc = ConfusionAccumulator(len(names))
        acc.matrix = matrices[picked].sum(axis=0) if picked else acc.matrix
        acc.images = len(picked)
        target = SmallTargetAccumulator.merged([small[k] for k in picked]) if small and small[0] else None
        rows.append(segmentation_rows(acc, names, ignored, target))
    return _collect(rows)
