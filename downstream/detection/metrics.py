"""Detection mAP from predictions and ground truth: the harness's numbers (pycocotools cross-checks them in tests).

:func:`score` is what :class:`~downstream.detection.task.DetectionTask` reports with ``ap_method="coco"``: matching
with ultralytics' ``DetectionValidator.match_predictions`` (IoU 0.50:0.05:0.95; COCOeval's rule for non-crowd boxes),
AP the COCOeval way; with ``ap_method="ultralytics"`` it applies ultralytics' ``DetMetrics`` to the same matches.
``coco_score`` in ``tests/coco_oracle.py`` computes the same quantities with pycocotools (``COCOeval``,
``bbox``, area range "all", ``maxDets`` 100 by default; pycocotools is a test dependency). The two agree to within
about 0.01 AP on ordinary cases: ultralytics integrates the 101-point precision envelope with the trapezoid rule
where pycocotools averages the 101 points, ultralytics matches greedily per prediction in confidence order where
COCOeval matches per image and category, and COCOeval keeps at most ``maxDets`` detections per image.

Per-size AP (:func:`size_ap`): COCO's small / medium / large areas (< 32², 32²..96², > 96² pixels of the image
scored) with COCOeval's own matching, where boxes of other sizes are ignored rather than counted; equal to
pycocotools' APs / APm / APl (the oracle's ``coco_score`` returns those as ``sizes``).

Inputs: ``preds[i]`` is (M, 6) ``x1, y1, x2, y2, conf, cls``; ``gts[i]`` is (N, 5) ``cls, x1, y1, x2, y2``.
Classes with no ground-truth instance have no AP (they are left out of ``per_class``, as in ultralytics).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch

from downstream.bootstrap import resample_weights


@dataclass
class ClassScore:
    map50_95: float
    map50: float
    images: int  # images with at least one ground-truth instance of the class
    instances: int  # ground-truth instances of the class


@dataclass
class DetectionScores:
    map50_95: float
    map50: float
    images: int
    instances: int
    per_class: dict[str, ClassScore] = field(default_factory=dict)
    sizes: dict[str, float] = field(default_factory=dict)  # AP50-95 per COCO area range (small, medium, large)


#: COCO's area ranges in pixels² (both ends inclusive, as COCOeval tests them)
AREA_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10)


AP_METHODS = ("coco", "ultralytics")
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def match(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(M, 10) bool: prediction j (sorted by descending confidence) is a true positive at IoU 0.50:0.05:0.95.

    ultralytics' ``match_predictions``: in confidence order each prediction takes the unclaimed ground-truth box of
    its class with the highest IoU, if that IoU reaches the threshold (COCOeval's rule for non-crowd boxes).
    """
    from downstream.detection.offline import ultralytics_offline

    ultralytics_offline()
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import box_iou

    if not len(pred) or not len(gt):
        return np.zeros((len(pred), len(IOU_THRESHOLDS)), bool)
    iou = box_iou(torch.from_numpy(gt[:, 1:]), torch.from_numpy(pred[:, :4]))
    return DetectionValidator.match_predictions(
        SimpleNamespace(iouv=IOU_THRESHOLDS), torch.from_numpy(pred[:, 5]), torch.from_numpy(gt[:, 0]), iou
    ).numpy()


def coco_ap(tp: np.ndarray, conf: np.ndarray, n_gt: int, counted: np.ndarray | None = None) -> np.ndarray:
    """AP at each IoU threshold the way COCOeval accumulates it: precision envelope sampled at 101 recalls, mean.

    ``tp``: (D, T) matches; ``counted``: (D, T), False where a detection is ignored at that threshold (neither a
    true nor a false positive; COCOeval's area-range rule). An ignored detection only repeats the previous point
    of the precision-recall curve, which changes neither the envelope nor the sampled recalls.
    """
    if n_gt == 0:
        return np.full(tp.shape[1], np.nan)
    if not len(tp):
        return np.zeros(tp.shape[1])
    order = np.argsort(-conf, kind="mergesort")
    tp = tp[order].astype(bool)
    counted = np.ones_like(tp) if counted is None else counted[order].astype(bool)
    tps = np.cumsum(tp & counted, axis=0, dtype=np.float64)
    fps = np.cumsum(~tp & counted, axis=0, dtype=np.float64)
    rc = tps / n_gt
    pr = tps / np.maximum(tps + fps, np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1], axis=0)[::-1]
    idx = np.stack([np.searchsorted(rc[:, t], RECALL_THRESHOLDS, side="left") for t in range(tp.shape[1])], axis=1)
    q = np.where(idx < len(pr), np.take_along_axis(pr, np.minimum(idx, len(pr) - 1), axis=0), 0.0)
    return q.mean(axis=0)


def draw_coco_ap(
    tp: np.ndarray,
    conf: np.ndarray,
    image: np.ndarray,
    n_gt: np.ndarray,
    draws: np.ndarray,
    counted: np.ndarray | None = None,
) -> np.ndarray:
    """(R, T) :func:`coco_ap` of one class on each of R drawn image lists at once (NaN where a list has no ground
    truth), equal to concatenating the drawn images' detections (repeats included) and calling :func:`coco_ap`.

    ``tp`` / ``counted``: (D, T) per detection of the pooled images; ``conf``: (D,); ``image``: (D,) the index of
    each detection's image; ``n_gt``: (n,) ground truths per image; ``draws``: (R, m) image indices per list, -1
    for an entry left out. A list is a vector of image weights (how often each image was drawn). Sorted by
    confidence, the precision envelope sampled at the 101 recalls only depends on the points at true positives:
    recall rises only there, a false positive lowers the precision of the point before it, and inside a run of
    true positives (the copies of one, or equal confidences) precision rises. So at threshold t, per true positive
    j: TP(j) = the drawn weights of the true positives up to j (a cumulative sum), FP(j) = the drawn weights of the
    false positives ranked before j (weights @ per-image counts), all lists at once. Detections of equal
    confidence where one is a true and another a false positive at some threshold make the curve depend on the
    order of the drawn images: then each list is accumulated in its order with :func:`coco_ap`.
    """
    n_thr = tp.shape[1]
    weights = resample_weights(draws, len(n_gt))
    gt_drawn = weights @ np.asarray(n_gt, np.int64)
    out = np.full((len(draws), n_thr), np.nan)
    rows = np.flatnonzero(gt_drawn > 0)
    if not len(rows):
        return out
    order = np.argsort(-np.asarray(conf, np.float64), kind="mergesort")
    tp = np.asarray(tp, bool)[order]
    counted = np.ones_like(tp) if counted is None else np.asarray(counted, bool)[order]
    conf, image = np.asarray(conf, np.float64)[order], np.asarray(image, np.int64)[order]
    is_tp, is_fp = tp & counted, ~tp & counted
    if _order_dependent_ties(conf, is_tp, is_fp):
        for r in rows:
            picked = draws[r][draws[r] >= 0]
            dets = np.concatenate([np.flatnonzero(image == i) for i in picked])
            out[r] = coco_ap(tp[dets], conf[dets], int(gt_drawn[r]), counted[dets])
        return out
    w = weights[rows].astype(np.float64)
    n_drawn = gt_drawn[rows].astype(np.float64)[:, None]
    n_rec = len(RECALL_THRESHOLDS)
    for t in range(n_thr):
        tp_at, fp_at = np.flatnonzero(is_tp[:, t]), np.flatnonzero(is_fp[:, t])
        if not len(tp_at):
            out[rows, t] = 0.0
            continue
        tps = np.cumsum(w[:, image[tp_at]], axis=1)  # (r, J)
        ahead = np.zeros((len(n_gt), len(tp_at) + 1))  # [image, j]: its false positives between TP j - 1 and TP j
        np.add.at(ahead, (image[fp_at], np.searchsorted(tp_at, fp_at)), 1.0)
        fps = w @ np.cumsum(ahead, axis=1)[:, : len(tp_at)]
        rc = tps / n_drawn
        pr = tps / np.maximum(tps + fps, np.spacing(1))
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        # the first point with recall >= threshold k: the number of points with at most k thresholds <= recall
        below = np.searchsorted(RECALL_THRESHOLDS, rc, side="right")  # (r, J), rising along J
        key = (np.arange(len(rows))[:, None] * (n_rec + 1) + below).ravel()
        first = np.cumsum(np.bincount(key, minlength=len(rows) * (n_rec + 1)).reshape(len(rows), -1), axis=1)
        padded = np.concatenate([pr, np.zeros((len(rows), 1))], axis=1)  # past the last point: precision 0
        q = np.take_along_axis(padded, first[:, :n_rec], axis=1)  # (r, 101)
        out[rows, t] = np.ascontiguousarray(q.T).mean(axis=0)  # summed over recalls in coco_ap's order
    return out


def _order_dependent_ties(conf: np.ndarray, is_tp: np.ndarray, is_fp: np.ndarray) -> bool:
    """Whether detections of equal confidence (``conf`` sorted) include a true and a false positive at one
    threshold: only then does the precision-recall curve depend on the order of the images."""
    if not np.any(conf[1:] == conf[:-1]):
        return False
    group = np.r_[0, np.cumsum(conf[1:] != conf[:-1])]
    seen_tp = np.zeros((group[-1] + 1, is_tp.shape[1]), bool)
    seen_fp = np.zeros_like(seen_tp)
    np.logical_or.at(seen_tp, group, is_tp)
    np.logical_or.at(seen_fp, group, is_fp)
    return bool((seen_tp & seen_fp).any())


def score(
    preds: list[np.ndarray], gts: list[np.ndarray], names: list[str] | tuple[str, ...], ap_method: str = "coco"
) -> DetectionScores:
    """mAP50-95 / mAP50 overall and per class (see the module docstring).

    ``ap_method="coco"``: COCOeval's 101-point mean (pycocotools' value; a perfect detector scores 1.0).
    ``ap_method="ultralytics"``: ultralytics' DetMetrics, bit for bit what ``model.val()`` reports (it integrates
    the 101-point envelope with the trapezoid rule, so a perfect detector scores 0.995).
    Matching is the same for both (:func:`match`).
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} prediction arrays for {len(gts)} images")
    return score_images([image_stats(pred, gt) for pred, gt in zip(preds, gts)], names, ap_method)


def image_stats(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """One image's matches (:func:`match`), confidences and classes: what :func:`score_images` aggregates."""
    pred = np.asarray(pred, np.float64).reshape(-1, 6)
    gt = np.asarray(gt, np.float64).reshape(-1, 5)
    pred = pred[np.argsort(-pred[:, 4], kind="stable")]
    return {
        "tp": match(pred, gt),
        "conf": pred[:, 4],
        "pred_cls": pred[:, 5],
        "target_cls": gt[:, 0],
        "target_img": np.unique(gt[:, 0]),
    }


def score_images(
    per_image: list[dict[str, np.ndarray]], names: list[str] | tuple[str, ...], ap_method: str = "coco"
) -> DetectionScores:
    """:func:`score` from per-image :func:`image_stats` (a resampled list may repeat an image)."""
    if ap_method not in AP_METHODS:
        raise ValueError(f"ap_method must be one of {AP_METHODS}, got {ap_method!r}")
    stats = {k: [im[k] for im in per_image] for k in ("tp", "conf", "pred_cls", "target_cls", "target_img")}
    if ap_method == "ultralytics":
        from ultralytics.utils.metrics import DetMetrics

        metrics = DetMetrics(names=dict(enumerate(names)))
        for i in range(len(per_image)):
            metrics.update_stats({**{k: v[i] for k, v in stats.items()}, "im_name": str(i)})
        metrics.process(plot=False)
        return scores_from_metrics(metrics, names, n_images=len(per_image))
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in stats.items()}
    tp = cat["tp"].reshape(-1, len(IOU_THRESHOLDS)).astype(bool)
    per_class, aps = {}, []
    for c, name in enumerate(names):
        n_gt = int(np.sum(cat["target_cls"] == c))
        if n_gt == 0:
            continue
        sel = cat["pred_cls"] == c
        ap = coco_ap(tp[sel], cat["conf"][sel], n_gt)
        aps.append(ap)
        per_class[name] = ClassScore(float(ap.mean()), float(ap[0]), int(np.sum(cat["target_img"] == c)), n_gt)
    ap = np.array(aps).reshape(-1, len(IOU_THRESHOLDS))
    return DetectionScores(
        float(ap.mean()) if len(ap) else 0.0,
        float(ap[:, 0].mean()) if len(ap) else 0.0,
        len(per_image),
        len(cat["target_cls"]),
        per_class,
    )


def draw_class_ap(per_image: list[dict[str, np.ndarray]], draws: np.ndarray, num_classes: int) -> np.ndarray:
    """(R, K, T) AP per class and IoU threshold of :func:`score_images` (``ap_method="coco"``) on each drawn list
    of images (``draws``: (R, m) indices into ``per_image``, -1 left out); NaN where a class has no ground truth."""
    out = np.full((len(draws), num_classes, len(IOU_THRESHOLDS)), np.nan)
    tp = np.concatenate([im["tp"] for im in per_image]).reshape(-1, len(IOU_THRESHOLDS)) if per_image else None
    if tp is None:
        return out
    conf = np.concatenate([im["conf"] for im in per_image])
    pred_cls = np.concatenate([im["pred_cls"] for im in per_image])
    image = np.repeat(np.arange(len(per_image)), [len(im["conf"]) for im in per_image])
    for c in range(num_classes):
        sel = pred_cls == c
        n_gt = np.array([np.sum(im["target_cls"] == c) for im in per_image])
        out[:, c] = draw_coco_ap(tp[sel], conf[sel], image[sel], n_gt, draws)
    return out


def draw_size_ap(
    per_image: list[dict], draws: np.ndarray, num_classes: int, skip: Collection[int] = ()
) -> dict[str, np.ndarray]:
    """:func:`size_ap_images` on each drawn list at once: area range -> (R,) AP50-95, NaN where a list has no
    counted ground truth in the range (``draws`` as in :func:`draw_class_ap`; ``skip`` as in :func:`size_ap`)."""
    out = {}
    for size in AREA_RANGES:
        per_class = []
        for c in range(num_classes):
            if c in skip:
                continue
            parts = [im[(size, c)] for im in per_image]
            conf = np.concatenate([part[0] for part in parts])
            m = np.concatenate([part[1] for part in parts], axis=1)
            ig = np.concatenate([part[2] for part in parts], axis=1)
            image = np.repeat(np.arange(len(parts)), [len(part[0]) for part in parts])
            n_gt = np.array([part[3] for part in parts])
            per_class.append(draw_coco_ap(m.T, conf, image, n_gt, draws, counted=~ig.T).mean(axis=1))
        out[size] = mean_present(np.stack(per_class, axis=1)) if per_class else np.full(len(draws), np.nan)
    return out


def mean_present(values: np.ndarray) -> np.ndarray:
    """(R,) mean of each row of (R, K) over its finite entries (NaN where none), summed in the order np.mean sums
    a row holding only those entries, so that it equals the mean of a list of the present values."""
    out = np.full(len(values), np.nan)
    present = np.isfinite(values)
    for mask in np.unique(present, axis=0):
        rows = np.flatnonzero((present == mask).all(axis=1))
        if mask.any():
            out[rows] = values[rows][:, mask].mean(axis=1)
    return out


def without_classes(scores: DetectionScores, names: Collection[str]) -> DetectionScores:
    """``scores`` with its overall mAP50-95 / mAP50 recomputed as the mean over the classes not in ``names``
    (the mean of the per-class APs, which is how both AP methods average: a class absent from the detector's
    training split left out); 0 when no class is left, as :func:`score_images` reports a split without boxes."""
    kept = [cs for name, cs in scores.per_class.items() if name not in names]
    return DetectionScores(
        float(np.mean([cs.map50_95 for cs in kept])) if kept else 0.0,
        float(np.mean([cs.map50 for cs in kept])) if kept else 0.0,
        scores.images,
        scores.instances,
        scores.per_class,
        scores.sizes,
    )


def _iou_matrix(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of boxes x1, y1, x2, y2: (D, G)."""
    lt = np.maximum(dt[:, None, :2], gt[None, :, :2])
    rb = np.minimum(dt[:, None, 2:4], gt[None, :, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_d = (dt[:, 2] - dt[:, 0]) * (dt[:, 3] - dt[:, 1])
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    return inter / np.maximum(area_d[:, None] + area_g[None, :] - inter, np.finfo(np.float64).tiny)


def _match_in_range(dt: np.ndarray, gt: np.ndarray, area: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, int]:
    """COCOeval's ``evaluateImg`` for one image and class: (matched (T, D), ignored (T, D), counted ground truths).

    Ground truths outside ``area`` are ignored (matched only when no counted one is left); a detection matched to
    an ignored ground truth, or unmatched and outside ``area``, is ignored.
    """
    thresholds = IOU_THRESHOLDS.numpy().astype(np.float64)
    g_area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    g_ig = (g_area < area[0]) | (g_area > area[1])
    order = np.argsort(g_ig, kind="mergesort")
    gt, g_ig = gt[order], g_ig[order]
    ious = _iou_matrix(dt[:, :4], gt[:, :4]) if len(dt) and len(gt) else np.zeros((len(dt), len(gt)))
    matched = np.zeros((len(thresholds), len(dt)), bool)
    ignored = np.zeros((len(thresholds), len(dt)), bool)
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(gt), bool)
        for d in range(len(dt)):
            best, m = min(thr, 1 - 1e-10), -1
            for g in range(len(gt)):
                if taken[g]:
                    continue
                if m > -1 and not g_ig[m] and g_ig[g]:
                    break
                if ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m > -1:
                matched[t, d], ignored[t, d], taken[m] = True, g_ig[m], True
    d_area = (dt[:, 2] - dt[:, 0]) * (dt[:, 3] - dt[:, 1])
    ignored |= ~matched & ((d_area < area[0]) | (d_area > area[1]))[None, :]
    return matched, ignored, int((~g_ig).sum())


def size_ap(
    preds: list[np.ndarray],
    gts: list[np.ndarray],
    num_classes: int,
    max_dets: int = 100,
    skip: Collection[int] = (),
) -> dict[str, float]:
    """AP50-95 per COCO area range (COCOeval's APs / APm / APl): the mean over classes with a counted ground
    truth in the range of the 101-point AP at each IoU threshold; ranges without one are left out. Class ids in
    ``skip`` are left out of the mean (a class absent from the detector's training split)."""
    return size_ap_images(
        [size_image_stats(pred, gt, num_classes, max_dets) for pred, gt in zip(preds, gts)], num_classes, skip
    )


def size_image_stats(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, max_dets: int = 100
) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """One image's COCOeval matching per (area range, class): (scores, matched, ignored, counted ground truths)."""
    pred = np.asarray(pred, np.float64).reshape(-1, 6)
    gt = np.asarray(gt, np.float64).reshape(-1, 5)
    out = {}
    for size, area in AREA_RANGES.items():
        for c in range(num_classes):
            dt = pred[pred[:, 5] == c]
            dt = dt[np.argsort(-dt[:, 4], kind="mergesort")][:max_dets]
            m, ig, n = _match_in_range(dt, gt[gt[:, 0] == c][:, 1:], area)
            out[(size, c)] = (dt[:, 4], m, ig, n)
    return out


def size_ap_images(per_image: list[dict], num_classes: int, skip: Collection[int] = ()) -> dict[str, float]:
    """:func:`size_ap` from per-image :func:`size_image_stats` (a resampled list may repeat an image)."""
    out = {}
    for size in AREA_RANGES:
        aps = []
        for c in range(num_classes):
            if c in skip:
                continue
            parts = [im[(size, c)] for im in per_image]
            n_gt = sum(part[3] for part in parts)
            if n_gt == 0:
                continue
            conf = np.concatenate([part[0] for part in parts])
            m = np.concatenate([part[1] for part in parts], axis=1)
            ig = np.concatenate([part[2] for part in parts], axis=1)
            aps.append(np.mean(coco_ap(m.T, conf, n_gt, counted=~ig.T)))  # ignored: neither TP nor FP
        if aps:
            out[size] = float(np.mean(aps))
    return out


def scores_from_metrics(metrics, names, n_images: int) -> DetectionScores:
    """Convert an ultralytics DetMetrics (after ``process``) to :class:`DetectionScores`."""
    box = metrics.box
    nt_class = np.asarray(getattr(metrics, "nt_per_class", np.zeros(len(names))))
    nt_image = np.asarray(getattr(metrics, "nt_per_image", np.zeros(len(names))))
    per_class = {}
    all_ap = np.asarray(box.all_ap).reshape(-1, len(IOU_THRESHOLDS)) if len(box.ap_class_index) else None
    for i, c in enumerate(box.ap_class_index):
        c = int(c)
        per_class[names[c]] = ClassScore(
            float(all_ap[i].mean()), float(all_ap[i, 0]), int(nt_image[c]), int(nt_class[c])
        )
    return DetectionScores(float(box.map), float(box.map50), n_images, int(nt_class.sum()), per_class)
