"""IoU / nIoU / Pd / Fa of binary small-target masks against a case computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from downstream.sample import IGNORE_INDEX
from downstream.segmentation.metrics import ConfusionAccumulator, SmallTargetAccumulator
from downstream.segmentation.task import rows_from_scores


def _case():
    """Three 10x10 images; the expected values are worked out in the comments."""
    # A: targets T1 = 2x2 block rows 1-2 cols 1-2 (centroid (1.5, 1.5)) and T2 = pixel (7, 7).
    #    predictions P1 = rows 1-2 cols 2-3 (centroid (1.5, 2.5), 1 px from T1: T1 detected), P2 = pixel (0, 9)
    #    (false), P3 = pixel (7, 4) (exactly 3 px from T2: not < 3, so T2 is missed and P3 is false).
    #    intersection 2, union 5 + 6 - 2 = 9.
    la, pa = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8)
    la[1:3, 1:3] = 1
    la[7, 7] = 1
    pa[1:3, 2:4] = 1
    pa[0, 9] = 1
    pa[7, 4] = 1
    # B: no target; row 0 is ignore (10 pixels), and the prediction there does not count; 90 valid pixels.
    lb, pb = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8)
    lb[0, :] = IGNORE_INDEX
    pb[0, 0] = 1
    # C: target T3 = rows 4-6, col 5, predicted exactly (detected); plus a diagonal pair (0, 0), (1, 1): one
    #    8-connected false component of 2 pixels. intersection 3, union 5.
    lc, pc = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8)
    lc[4:7, 5] = 1
    pc[4:7, 5] = 1
    pc[0, 0] = pc[1, 1] = 1
    return [(pa, la), (pb, lb), (pc, lc)]


def test_small_target_metrics_equal_the_hand_computed_values():
    acc = SmallTargetAccumulator()
    for pred, label in _case():
        acc.update(pred, label)
    s = acc.scores()
    assert s.iou == pytest.approx((2 + 3) / (9 + 5))
    assert s.niou == pytest.approx((2 / 9 + 3 / 5) / 2)  # B has neither target nor prediction: left out
    assert s.targets == 3 and s.pd == pytest.approx(2 / 3)
    assert s.fa == pytest.approx((1 + 1 + 2) / (100 + 90 + 100))  # P2, P3 and C's diagonal pair


def test_rows_of_a_binary_target_set():
    conf, small = ConfusionAccumulator(2), SmallTargetAccumulator()
    for pred, label in _case():
        conf.update(pred, label)
        small.update(pred, label)
    rows = {(r.metric, r.cls): r.value for r in rows_from_scores(conf, ("background", "target"), (), small)}
    assert rows[("IoU", "target")] == pytest.approx(5 / 14)  # the literature's IoU is the target's IoU row
    assert rows[("nIoU", "all")] == pytest.approx(37 / 90)
    assert rows[("Pd", "all")] == pytest.approx(2 / 3)
    assert rows[("Fa", "all")] == pytest.approx(4 / 290)
