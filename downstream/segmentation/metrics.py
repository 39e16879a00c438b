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
from typing import Any

import numpy as np

from downstream.sample import IGNORE_INDEX


def confusion_matrix(
    pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = label, columns = prediction, over pixels with a valid label."""
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in shape")
    valid = label != ignore_index
    lab = label[valid].astype(np.int64)
    prd = pred[valid].astype(np.int64)
    if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(
            f"label ids {np.unique(lab[(lab < 0) | (lab >= num_classes)])[:10].tolist()} outside 0..{num_classes - 1}"
        )
    if prd.size and (prd.min() < 0 or prd.max() >= num_classes):
        raise ValueError(f"predicted ids outside 0..{num_classes - 1}")
    return np.bincount(lab * num_classes + prd, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegScores:
    iou: np.ndarray  # (..., K) percent, NaN where a class is neither labelled nor predicted
    acc: np.ndarray  # (..., K) per-class pixel accuracy, percent, NaN where a class is not labelled
    miou: Any  # float (one matrix) or (...,) array (a stack of them)
    aacc: Any


def scores(conf: np.ndarray) -> SegScores:
    """IoU per class, per-class accuracy, mIoU and aAcc (percent) from a confusion matrix, or from each of a stack
    of them ((..., K, K): e.g. the summed matrices of many drawn image lists at once)."""
    conf = np.asarray(conf, dtype=np.float64)
    intersect = np.diagonal(conf, axis1=-2, axis2=-1)
    area_label = conf.sum(axis=-1)
    area_pred = conf.sum(axis=-2)
    union = area_label + area_pred - intersect
    total = area_label.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, intersect / union, np.nan) * 100.0
        acc = np.where(area_label > 0, intersect / area_label, np.nan) * 100.0
        aacc = np.where(total > 0, intersect.sum(axis=-1) / total * 100.0, np.nan)
    miou = mean_iou(iou)
    if conf.ndim == 2:
        return SegScores(iou=iou, acc=acc, miou=float(miou), aacc=float(aacc))
    return SegScores(iou=iou, acc=acc, miou=miou, aacc=aacc)


def mean_iou(iou: np.ndarray, skip: list[int] | tuple[int, ...] = ()) -> np.ndarray:
    """mIoU (mmseg's: the mean over the classes whose IoU is defined) of IoUs ``(..., K)``; class ids in ``skip``
    left out (a class absent from the model's training split); NaN where no class is left."""
    iou = np.asarray(iou, dtype=np.float64)
    if len(skip):
        iou = np.delete(iou, list(skip), axis=-1)
    present = np.isfinite(iou).any(axis=-1)
    return np.where(present, np.nansum(iou, axis=-1) / np.maximum(np.isfinite(iou).sum(axis=-1), 1), np.nan)


class ConfusionAccumulator:
    """Accumulates one confusion matrix over a split, image by image."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.images = 0

    def update(self, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
        """Add one image; returns its own confusion matrix (the per-image evidence of bootstrap intervals)."""
        matrix = confusion_matrix(pred, label, self.num_classes, self.ignore_index)
        self.matrix += matrix
        self.images += 1
        return matrix

    def scores(self) -> SegScores:
        return scores(self.matrix)


def mmseg_iou_metric(
    preds: list[np.ndarray],
    labels: list[np.ndarray],
    class_names: tuple[str, ...] | list[str],
    ignore_index: int = IGNORE_INDEX,
) -> tuple[dict, dict]:
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
    samples = [
        {
            "pred_sem_seg": {"data": torch.from_numpy(np.asarray(p).astype(np.int64))[None]},
            "gt_sem_seg": {"data": torch.from_numpy(np.asarray(lab).astype(np.int64))[None]},
        }
        for p, lab in zip(preds, labels)
    ]
    metric.process({}, samples)
    summary = metric.compute_metrics(metric.results)
    areas = tuple(sum(r[i] for r in metric.results) for i in range(4))
    per_class = IoUMetric.total_area_to_metrics(*areas, metrics=["mIoU"])
    return summary, {k: np.asarray(v) for k, v in per_class.items()}


# ------------------------------------------------------------------------- infrared small-target metrics

#: a target counts as detected when a predicted component's centroid is closer than this (pixels) to its centroid
PD_DISTANCE = 3.0


@dataclass(frozen=True)
class SmallTargetScores:
    iou: float  # target IoU over the split: sum of intersections / sum of unions
    niou: float  # mean over images of the per-image target IoU (images with neither target nor prediction left out)
    pd: float  # probability of detection: detected targets / all targets
    fa: float  # false-alarm rate: pixels of unmatched predicted components / all pixels
    targets: int
    images: int


def _components(mask: np.ndarray) -> tuple[list[np.ndarray], list[int], np.ndarray]:
    """8-connected components of a binary mask: (centroids (y, x), areas, label image)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    if count == 0:
        return [], [], labels
    index = np.arange(1, count + 1)
    centroids = [np.asarray(c, np.float64) for c in ndimage.center_of_mass(mask, labels, index)]
    areas = [int(a) for a in ndimage.sum(np.ones_like(mask, dtype=np.int64), labels, index)]
    return centroids, areas, labels


class SmallTargetAccumulator:
    """IoU, nIoU, Pd and Fa of one target class over a split, as the IRSTD literature defines them.

    Following ACM / DNANet (and BasicIRSTD's ``PD_FA``): targets and predictions are 8-connected components; in
    target order, each target takes the first still-unmatched predicted component whose centroid is closer than
    :data:`PD_DISTANCE` pixels to its own (strictly less, as their code has it); Pd = matched targets / targets.
    Fa counts the pixels of predicted components no target matched, over all pixels of the split (matching is by
    component, not by area value as in BasicIRSTD's list filter). nIoU averages the per-image IoU; an image with
    neither target nor predicted pixels has no IoU and is left out (ACM's epsilon would score it 0). Pixels with
    the ignore label count for none of these.
    """

    def __init__(self, target: int = 1, ignore_index: int = IGNORE_INDEX):
        self.target, self.ignore_index = int(target), ignore_index
        self.inter = self.union = 0
        self.per_image: list[float] = []
        self.targets = self.detected = self.false_pixels = self.pixels = self.images = 0

    def update(self, pred: np.ndarray, label: np.ndarray) -> None:
        pred, label = np.asarray(pred), np.asarray(label)
        if pred.shape != label.shape:
            raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in shape")
        valid = label != self.ignore_index
        p = (pred == self.target) & valid
        t = (label == self.target) & valid
        inter, union = int((p & t).sum()), int((p | t).sum())
        self.inter += inter
        self.union += union
        if union:
            self.per_image.append(inter / union)
        t_centroids, _, _ = _components(t)
        p_centroids, p_areas, _ = _components(p)
        unmatched = list(range(len(p_centroids)))
        for centroid in t_centroids:
            for k in unmatched:
                if np.linalg.norm(p_centroids[k] - centroid) < PD_DISTANCE:
                    unmatched.remove(k)
                    self.detected += 1
                    break
        self.targets += len(t_centroids)
        self.false_pixels += sum(p_areas[k] for k in unmatched)
        self.pixels += int(valid.sum())
        self.images += 1

    _COUNTS = ("inter", "union", "targets", "detected", "false_pixels", "pixels", "images")

    def state(self) -> dict:
        """Counts and per-image IoUs as plain data; ``merged`` of the states of single images gives their split."""
        return {**{k: getattr(self, k) for k in self._COUNTS}, "per_image": list(self.per_image)}

    @classmethod
    def merged(cls, states: list[dict], target: int = 1) -> SmallTargetAccumulator:
        acc = cls(target=target)
        for st in states:
            for k in cls._COUNTS:
                setattr(acc, k, getattr(acc, k) + st[k])
            acc.per_image += st["per_image"]
        return acc

    def scores(self) -> SmallTargetScores:
        nan = float("nan")
        return SmallTargetScores(
            iou=self.inter / self.union if self.union else nan,
            niou=float(np.mean(self.per_image)) if self.per_image else nan,
            pd=self.detected / self.targets if self.targets else nan,
            fa=self.false_pixels / self.pixels if self.pixels else nan,
            targets=self.targets,
            images=self.images,
        )
