"""Per-size detection AP (COCO small / medium / large) equals pycocotools' APs / APm / APl."""

from __future__ import annotations

import numpy as np
import pytest
from coco_oracle import coco_score

from downstream.detection.metrics import size_ap


def _case(seed: int):
    """Boxes of every COCO size (8..200 px), near-duplicate and random predictions, some wrong classes."""
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(8):
        n = int(rng.integers(0, 7))
        side = rng.choice([8, 20, 31, 33, 70, 95, 97, 130, 200], size=n) * rng.uniform(0.8, 1.2, (2, n))
        xy = rng.uniform(0, 300, (2, n))
        gt = np.c_[rng.integers(0, 3, n), xy[0], xy[1], xy[0] + side[0], xy[1] + side[1]]
        rows = []
        for g in gt:
            if rng.random() < 0.8:
                jitter = rng.normal(0, 0.1 * (g[3] - g[1]), 4)
                cls = g[0] if rng.random() < 0.9 else rng.integers(0, 3)
                rows.append([*(g[1:] + jitter), rng.random(), cls])
        for _ in range(int(rng.integers(0, 5))):
            s, (x, y) = rng.choice([10, 50, 150]), rng.uniform(0, 300, 2)
            rows.append([x, y, x + s, y + s, rng.random(), rng.integers(0, 3)])
        p = np.array(rows, np.float64).reshape(-1, 6)
        p[:, 2:4] = np.maximum(p[:, 2:4], p[:, :2] + 1)
        preds.append(p)
        gts.append(gt)
    return preds, gts


@pytest.mark.parametrize("seed", range(5))
def test_size_ap_equals_pycocotools(seed):
    preds, gts = _case(seed)
    ours = size_ap(preds, gts, 3)
    ref = coco_score(preds, gts, ["a", "b", "c"], max_dets=100).sizes
    assert set(ours) == set(ref) and ref
    for size in ref:
        assert ours[size] == pytest.approx(ref[size], abs=1e-12)


def test_size_without_boxes_has_no_value_and_perfect_is_one():
    gt = np.array([[0, 10, 10, 20, 20], [1, 0, 0, 60, 60]], np.float64)  # one small, one medium box
    pred = np.c_[gt[:, 1:], [0.9, 0.8], gt[:, 0]]
    assert size_ap([pred], [gt], 2) == {"small": 1.0, "medium": 1.0}
