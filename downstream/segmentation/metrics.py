"""Confusion matrix -> IoU per class, mIoU and aAcc, computed exactly as mmseg's ``IoUMetric``.

Pixels whose label is ``IGNORE_INDEX`` (255) are not counted. For class ``c`` with ``I`` = pixels
labelled ``c`` and predicted ``c``, ``P`` = pixels predicted ``c`` and ``L`` = pixels labelled ``c``
(over counted pixels of the whole split), ``IoU_c = I / (P + L - I)``; a class that is neither
labelled nor predicted anywhere has no IoU (NaN) and is left out of ``mIoU = nanmean(IoU)``; a class
that is only predicted has IoU 0. ``aAcc = sum_c I_c / sum_c L_c``. Values are percentages (0-100),
as mmseg reports them, but not rounded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from downstream.sample import IGNORE_INDEX


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = label, columns = prediction, over pixels with a valid label."""
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in shape")
    valid = label != ignore_index
    lab = label[valid].astype(np.int64)
    prd = pred[valid].astype(np.int64)
    if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(f"label ids {np.unique(lab[(lab < 0) | (lab >= num_classes)])[:10].tolist()} "
                         f"outside 0..{num_classes - 1}")
    if prd.size and (prd.min() < 0 or prd.max() >= num_classes):
        raise ValueError(f"predicted ids outside 0..{num_classes - 1}")
    return np.bincount(lab * num_classes + prd, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegScores:
    iou: np.ndarray   # (K,) percent, NaN where a class is neither labelled nor predicted
    acc: np.ndarray   # (K,) per-class pixel accuracy, percent, NaN where a class is not labelled
    miou: float
    aacc: float


def scores(conf: np.ndarray) -> SegScores:
    """IoU per class, per-class accuracy, mIoU and aAcc (percent) from a confusion matrix."""
    conf = np.asarray(conf, dtype=np.float64)
    intersect = np.diag(conf)
    area_label = conf.sum(axis=1)
    area_pred = conf.sum(axis=0)
    union = area_label + area_pred - intersect
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, intersect / union, np.nan) * 100.0
        acc = np.where(area_label > 0, intersect / area_label, np.nan) * 100.0
        aacc = float(intersect.sum() / area_label.sum() * 100.0) if area_label.sum() > 0 else float("nan")
    miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
    return SegScores(iou=iou, acc=acc, miou=miou, aacc=aacc)


class ConfusionAccumulator:
    """Accumulates one confusion matrix over a split, image by image."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.images = 0

    def update(self, pred: np.ndarray, label: np.ndarray) -> None:
        self.matrix += confusion_matrix(pred, label, self.num_classes, self.ignore_index)
        self.images += 1

    def scores(self) -> SegScores:
        return scores(self.matrix)


def mmseg_iou_metric(preds: list[np.ndarray], labels: list[np.ndarray], class_names: tuple[str, ...] | list[str],
                     ignore_index: int = IGNORE_INDEX) -> tuple[dict, dict]:
    """Reference: mmseg's ``IoUMetric`` on the same predictions (for cross-checks and tests).

    Returns ``(summary, per_class)``: the rounded percentages ``compute_metrics`` reports (aAcc, mIoU,
    mAcc) and the unrounded fractions of ``total_area_to_metrics`` (``IoU``, ``Acc`` arrays, ``aAcc``).
    """
    import torch

    from downstream.segmentation.mmcv_shim import import_mmseg

    import_mmseg()
    from mmseg.evaluation import IoUMetric

    metric = IoUMetric(iou_metrics=["mIoU"], ignore_index=ignore_index)
    metric.dataset_meta = {"classes": tuple(class_names)}
    samples = [{"pred_sem_seg": {"data": torch.from_numpy(np.asarray(p).astype(np.int64))[None]},
                "gt_sem_seg": {"data": torch.from_numpy(np.asarray(lab).astype(np.int64))[None]}}
               for p, lab in zip(preds, labels)]
    metric.process({}, samples)
    summary = metric.compute_metrics(metric.results)
    areas = tuple(sum(r[i] for r in metric.results) for i in range(4))
    per_class = IoUMetric.total_area_to_metrics(*areas, metrics=["mIoU"])
    return summary, {k: np.asarray(v) for k, v in per_class.items()}
