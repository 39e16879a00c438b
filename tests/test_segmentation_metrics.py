"""Segmentation metrics: a hand-computed confusion matrix, and equality with mmseg's IoUMetric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from downstream.sample import IGNORE_INDEX
from downstream.segmentation.metrics import ConfusionAccumulator, confusion_matrix, mmseg_iou_metric, scores
from downstream.segmentation.task import rows_from_scores


def test_hand_computed_confusion_matrix():
    # 3 classes; one ignored pixel; class 2 is never labelled but predicted once.
    label = np.array([[0, 0, 1, 1], [1, 0, IGNORE_INDEX, 1]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 0]], dtype=np.uint8)
    conf = confusion_matrix(pred, label, 3)
    # rows = label, cols = prediction
    assert conf.tolist() == [[2, 1, 0], [1, 2, 1], [0, 0, 0]]
    res = scores(conf)
    # class 0: I=2, L=3, P=3 -> 2/4; class 1: I=2, L=4, P=3 -> 2/5; class 2: I=0, L=0, P=1 -> 0
    np.testing.assert_allclose(res.iou, [50.0, 40.0, 0.0])
    assert res.miou == pytest.approx(30.0)
    assert res.aacc == pytest.approx(4 / 7 * 100)
    np.testing.assert_allclose(res.acc[:2], [200 / 3, 50.0])
    assert math.isnan(res.acc[2])


def test_absent_class_is_nan_and_left_out_of_miou():
    label = np.array([[0, 1], [1, 0]])
    res = scores(confusion_matrix(label, label, 4))
    assert res.iou[:2].tolist() == [100.0, 100.0]
    assert np.isnan(res.iou[2:]).all()
    assert res.miou == 100.0
    acc = ConfusionAccumulator(4)
    acc.update(label, label)
    rows = rows_from_scores(acc, ("a", "b", "c", "d"))
    assert [(r.metric, r.cls) for r in rows] == [("IoU", "a"), ("IoU", "b"), ("mIoU", "all"), ("aAcc", "all")]
    assert all(r.n == 1 for r in rows)


def test_rows_skip_ignored_classes():
    acc = ConfusionAccumulator(3)
    acc.update(np.array([[1, 2]]), np.array([[1, 2]]))
    rows = rows_from_scores(acc, ("unlabeled", "x", "y"), ignored=(0,))
    assert [r.cls for r in rows if r.metric == "IoU"] == ["x", "y"]


def test_bad_ids_are_errors():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.zeros((2, 2)), np.full((2, 2), 7), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_mmseg_iou_metric(seed):
    rng = np.random.default_rng(seed)
    k = 6
    names = [f"c{i}" for i in range(k)]
    preds, labels = [], []
    for shape in [(17, 23), (30, 11), (8, 8)]:
        lab = rng.integers(0, k - 1, size=shape)  # class k-1 never labelled ...
        lab[rng.random(shape) < 0.15] = IGNORE_INDEX
        pred = np.where(rng.random(shape) < 0.6, lab, rng.integers(0, k, size=shape))
        pred[pred == IGNORE_INDEX] = 0
        preds.append(pred.astype(np.uint8))
        labels.append(lab.astype(np.uint8))
    preds[0][0, 0] = k - 1  # ... but predicted once (IoU 0)
    acc = ConfusionAccumulator(k)
    for p, lab in zip(preds, labels):
        acc.update(p, lab)
    ours = acc.scores()
    summary, per_class = mmseg_iou_metric(preds, labels, names)
    np.testing.assert_allclose(ours.iou, per_class["IoU"] * 100, rtol=1e-6, equal_nan=True)  # mmseg: float32
    assert ours.aacc == pytest.approx(float(per_class["aAcc"]) * 100, rel=1e-6)
    # IoUMetric's summary is rounded to 2 decimals
    assert summary["mIoU"] == pytest.approx(round(ours.miou, 2), abs=1e-9)
    assert summary["aAcc"] == pytest.approx(round(ours.aacc, 2), abs=1e-9)
    assert ours.iou[k - 1] == 0.0
