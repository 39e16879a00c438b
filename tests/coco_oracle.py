"""The detection oracle outside our code: pycocotools' COCOeval on the harness's inputs (test extra only).

``coco_score(preds, gts, names)`` takes what :func:`downstream.detection.metrics.score` takes (``preds[i]``: (M, 6)
``x1, y1, x2, y2, conf, cls``; ``gts[i]``: (N, 5) ``cls, x1, y1, x2, y2``) and returns the same
:class:`~downstream.detection.metrics.DetectionScores`, plus COCO's per-size APs in ``sizes``.
"""

from __future__ import annotations

import numpy as np

from downstream.detection.metrics import AREA_RANGES, ClassScore, DetectionScores


def coco_score(
    preds: list[np.ndarray], gts: list[np.ndarray], names: list[str] | tuple[str, ...], max_dets: int = 100
) -> DetectionScores:
    """The same quantities from pycocotools' COCOeval (boxes as x1, y1, x2, y2 pixels; widths x2 - x1)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    for img_id, (pred, gt) in enumerate(zip(preds, gts), start=1):
        images.append({"id": img_id, "width": 1, "height": 1})
        for cls, x1, y1, x2, y2 in np.asarray(gt, np.float64).reshape(-1, 5):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": img_id,
                    "category_id": int(cls) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        for x1, y1, x2, y2, conf, cls in np.asarray(pred, np.float64).reshape(-1, 6):
            detections.append(
                {
                    "image_id": img_id,
                    "category_id": int(cls) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(conf),
                }
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api = COCO()
        gt_api.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt_api.createIndex()
        dt_api = gt_api.loadRes(detections) if detections else COCO()
        if not detections:
            dt_api.dataset = {"images": images, "annotations": [], "categories": categories}
            dt_api.createIndex()
        ev = COCOeval(gt_api, dt_api, "bbox")
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # T x R x K, area "all", maxDets[-1]
    gt_cls = np.concatenate([np.asarray(g, np.float64).reshape(-1, 5)[:, 0] for g in gts]) if gts else np.zeros(0)
    per_class, ap_rows = {}, []
    for k, name in enumerate(names):
        if not np.any(gt_cls == k):
            continue
        p = precision[:, :, k]
        ap_t = np.where(p > -1, p, 0).mean(axis=1)  # AP at each IoU threshold
        ap_rows.append(ap_t)
        per_class[name] = ClassScore(
            float(ap_t.mean()),
            float(ap_t[0]),
            sum(int(np.any(np.asarray(g).reshape(-1, 5)[:, 0] == k)) for g in gts),
            int(np.sum(gt_cls == k)),
        )
    ap = np.array(ap_rows) if ap_rows else np.zeros((0, 10))
    sizes = {size: float(ev.stats[3 + i]) for i, size in enumerate(AREA_RANGES) if ev.stats[3 + i] > -1}
    return DetectionScores(
        float(ap.mean()) if len(ap) else 0.0,
        float(ap[:, 0].mean()) if len(ap) else 0.0,
        len(gts),
        len(gt_cls),
        per_class,
        sizes,
    )
