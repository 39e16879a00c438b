"""``detection``: a YOLO detector evaluated on SR outputs, mAP50-95 and mAP50 overall and per class.

Configs: ``configs/tasks/detection_m3fd.yaml`` (the paper's YOLOv5-s fine-tuned on M3FD) and
``configs/tasks/detection_demo.yaml`` (the committed synthir demo detector). Options:

``weights``       a weights-registry name (configs/weights.yaml) or a file path, our plain format or an
                  ultralytics checkpoint (read with a class allowlist, see downstream.detection.yolo);
``imgsz``         the detector's input size (longest side, letterboxed, rectangular batches as in ``yolo val``);
``conf``, ``iou`` NMS confidence and IoU thresholds (ultralytics' validation defaults: 0.001 and 0.7);
``batch``, ``max_det``, ``device``, ``weights_dir``;
``ap_method``     ``coco`` (default: COCOeval's 101-point mean on the predictions in pixels of the SR image,
                  equal to pycocotools; a perfect detector scores 1.0) or ``ultralytics`` (the validator's own
                  DetMetrics, i.e. ``model.val()``; trapezoid rule, a perfect detector scores 0.995);
``random_weights``  a randomly initialised detector (seeded; tests only; every row is flagged);
``classes``       the detector's class names (written by ``train --dataset``; checked against the data set's);
``scratch_init``  the detector was trained from scratch (no pretrained start): every row gets that flag;
``train_counts``  boxes per class in the detector's training split (written by ``train --dataset``): a class counted
                  0 is flagged ``class_absent_in_training`` on its rows and left out of the ``all`` rows (mAP50-95,
                  mAP50, APs / APm / APl; value and bootstrap replicates); unknown (no key) flags nothing;
``keep_absent_classes``  keep such classes in ``all`` (then flagged too; ``train --keep-absent-classes``).

Rows: mAP50-95 / mAP50 overall and per class, and APs / APm / APl (COCO's small / medium / large areas,
``metrics.size_ap``, equal to pycocotools') overall.

Images go to the detector as the SR method wrote them (HR size, linked, not re-encoded); an image smaller than
its boxes (an LR-size frame) is an error. Every setting above is part of :meth:`identity` and so of the cache
key of the result rows; the weights enter by sha256.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

from downstream.detection.metrics import (
    AP_METHODS,
    DetectionScores,
    score,
    scores_from_metrics,
    size_ap,
    without_classes,
)
from downstream.errors import ClassMismatchError, DataError
from downstream.sample import LABEL_BOXES
from downstream.task_flags import absent_flags, absent_in_training, check_train_counts
from downstream.tasks import Box, MetricRow, ResultMetric, Task, TaskItem, TaskReport, draw_positions
from sr.errors import ConfigError
from sr.runtime import DEVICE_AUTO
from sr.vocab import CLASS_ALL, FLAG_RANDOM_WEIGHTS, FLAG_SCRATCH_INIT


class DetectionTask(Task):
    name = "detection"
    labels = (LABEL_BOXES,)
    libraries = ("ultralytics", "torch")
    metrics = (
        ResultMetric("mAP50-95", per_class=True),
        ResultMetric("mAP50", per_class=True),
        ResultMetric("APs"),
        ResultMetric("APm"),
        ResultMetric("APl"),
    )
    report = TaskReport(
        per_class="mAP50-95",
        overall="mAP50-95",
        overall_label="mAP",
        figure="detections (conf >= 0.25; ground truth dashed white)",
    )

    def __init__(
        self,
        *,
        weights: str | None = None,
        imgsz: int = 640,
        conf: float = 0.001,
        iou: float = 0.7,
        batch: int = 16,
        max_det: int = 300,
        device: str | None = DEVICE_AUTO,
        weights_dir: str | None = None,
        random_weights: bool = False,
        ap_method: str = "coco",
        model: str = "yolov5s.yaml",
        classes: list[str] | None = None,
        seed: int = 0,
        trust_pickle: bool = False,
        scratch_init: bool = False,
        train_counts: dict[str, int] | None = None,
        keep_absent_classes: bool = False,
    ):
        if ap_method not in AP_METHODS:
            raise ConfigError(f"detection task: ap_method must be one of {AP_METHODS}, got {ap_method!r}")
        if not random_weights and not weights:
            raise ConfigError(
                "detection task: 'weights' (a registry name or a path) is required unless random_weights is set"
            )
        self.weights, self.imgsz, self.conf, self.iou = weights, int(imgsz), float(conf), float(iou)
        self.batch, self.max_det, self.device = int(batch), int(max_det), device
        from downstream.detection.yolo import WHAT
        from sr.weights import random_where_missing, resolve_weights

        # random weights only when the file is missing; a missing file is a UserError now, when the runner builds it
        random_weights = random_where_missing(
            random_weights, weights and (lambda: resolve_weights(weights, weights_dir, what=WHAT))
        )
        self.weights_dir, self.random_weights, self.ap_method = weights_dir, random_weights, ap_method
        self.model_cfg, self.classes, self.seed, self.trust_pickle = model, classes, int(seed), trust_pickle
        self.scratch_init = bool(scratch_init)
        self.train_counts = check_train_counts(train_counts, "detection")
        self.keep_absent_classes = bool(keep_absent_classes)
        self._model = None
        self._evaluated: tuple[Any, Any] | None = None  # (the loaded model, its copy for the validator)
        self._random_models: dict[tuple[str, ...], Any] = {}  # random detectors, one per class list (data set)
        self._weights_path: Path | None = None
        if not self.random_weights:
            self._weights_path = resolve_weights(self.weights, self.weights_dir, what=WHAT)
        self._header: dict[str, Any] = {}

    # -- model ---------------------------------------------------------------------------------------------------
    def _load(self, class_names: tuple[str, ...] | None = None):
        from downstream.detection.yolo import build_model, load_detector

        if self.random_weights:  # built for the classes asked (each data set its own), seeded, once per class list
            import torch

            names = tuple(class_names or self.classes or ())
            if not names:
                raise ConfigError("detection task: random_weights needs 'classes' or a data set with classes")
            if names not in self._random_models:
                torch.manual_seed(self.seed)
                self._random_models[names] = build_model(self.model_cfg, nc=len(names), names=list(names)).eval()
            self._model = self._random_models[names]
            self._header = {"format": "random", "names": list(names), "yaml": self.model_cfg}
        elif self._model is None:
            self._model, self._weights_path, self._header = load_detector(
                self.weights, self.weights_dir, trust_pickle=self.trust_pickle
            )
        return self._model

    @property
    def class_names(self) -> list[str]:
        """The classes of the detector (a random one: of the data set it was last built for)."""
        if self._model is None:
            self._load(tuple(self.classes or ()))
        names = self._model.names
        return [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)

    # -- Task contract -------------------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        from sr.weights import sha256_of

        if self.random_weights:
            weights = {"random": True, "seed": self.seed, "model": self.model_cfg}
        else:
            from downstream.detection.yolo import WHAT
            from sr.weights import resolve_weights

            path = resolve_weights(self.weights, self.weights_dir, what=WHAT)
            weights = {"name": str(self.weights), "sha256": sha256_of(path)}
        ident = {
            "name": self.name,
            "weights": weights,
            "imgsz": self.imgsz,
            "conf": self.conf,
            "iou": self.iou,
            "max_det": self.max_det,
            "ap_method": self.ap_method,
            "rect": True,
            "half": False,
        }
        if self.train_counts is not None:  # unknown counts change nothing (earlier cache entries stay valid)
            ident.update(train_counts=self.train_counts, keep_absent_classes=self.keep_absent_classes)
        return ident

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(
            flag
            for flag, on in ((FLAG_RANDOM_WEIGHTS, self.random_weights), (FLAG_SCRATCH_INIT, self.scratch_init))
            if on
        )

    def check_classes(self, class_names) -> None:
        """A UserError (one line: both class lists and the fix) when the detector's classes are not the data set's.

        Uses the ``classes`` option when given (no weights are read), else the class names in the weights. A random
        detector is built for each data set's classes, so it fits any."""
        if self.random_weights:
            return
        names = list(self.classes) if self.classes else self.class_names
        if list(class_names) != names:
            raise ClassMismatchError("detector", names, class_names, "detection")

    def settings(self) -> dict[str, Any]:
        """The evaluation settings recorded with results (``identity`` without the weights hash)."""
        return {
            "imgsz": self.imgsz,
            "conf": self.conf,
            "iou": self.iou,
            "max_det": self.max_det,
            "ap_method": self.ap_method,
            "weights": str(self.weights) if not self.random_weights else "random",
        }

    def predict_and_score(self, items: list[TaskItem], class_names: tuple[str, ...] | list[str], workdir: Path):
        """Run ultralytics' validator on the items; returns (DetectionScores, ultralytics DetMetrics, captured)."""
        from downstream.detection.data import write_data_yaml, write_split_from_files
        from downstream.detection.yolo import validate

        if not items:
            raise DataError("detection: no images to evaluate")
        boxes = [i.label(LABEL_BOXES) for i in items]
        model = self._load(tuple(class_names))
        self.check_classes(class_names)
        names = self.class_names
        if list(class_names) != names:  # a ``classes`` option that the weights contradict
            raise ClassMismatchError("detector", names, class_names, "detection")
        workdir = Path(workdir)
        write_split_from_files(
            workdir / "data", "test", ((i.id, i.image, b) for i, b in zip(items, boxes, strict=True))
        )
        data_yaml = write_data_yaml(workdir / "data", names, {"train": "test", "val": "test", "test": "test"})
        metrics, captured = validate(
            self._evaluation_copy(model),
            data_yaml,
            imgsz=self.imgsz,
            conf=self.conf,
            iou=self.iou,
            batch=self.batch,
            device=self.device,
            workdir=workdir / "runs",
            max_det=self.max_det,
            split="test",
            in_place=True,
        )
        if len(captured) != len(items):
            raise DataError(
                f"detection: the validator read {len(captured)} of {len(items)} images (see {workdir / 'data'})"
            )
        if self.ap_method == "ultralytics":  # the validator's own numbers (matched in letterboxed coordinates)
            scores = scores_from_metrics(metrics, names, n_images=len(captured))
        else:  # COCOeval on the predictions in pixels of the SR image (what ultralytics exports to COCO JSON)
            scores = score([c.pred for c in captured], [c.gt for c in captured], names, "coco")
        # classes the training split had none of leave the "all" rows (unless kept)
        excluded = () if self.keep_absent_classes else absent_in_training(names, self.train_counts)
        if set(excluded) & set(scores.per_class):
            scores = without_classes(scores, excluded)
        skip = [names.index(name) for name in excluded]
        scores.sizes = size_ap([c.pred for c in captured], [c.gt for c in captured], len(names), skip=skip)
        return scores, metrics, captured

    def _evaluation_copy(self, model: Any) -> Any:
        """A copy of ``model`` for ultralytics' validator (which may change the model it is handed), made once per
        loaded model and handed to every evaluation of this task: a copy per evaluation cost 1.6 of the demo job's
        11.7 s of detection (profiled). The figures draw with ``model`` itself."""
        if self._evaluated is None or self._evaluated[0] is not model:
            self._evaluated = (model, deepcopy(model))
        return self._evaluated[1]

    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        return self.evaluate_with_state(items, class_names, workdir)[0]

    def evaluate_with_state(
        self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path
    ) -> tuple[list[MetricRow], dict[str, Any]]:
        """The rows, and per image the detections and ground truth the validator saw (pixels of the SR image)."""
        scores, _, captured = self.predict_and_score(items, class_names, workdir)
        images = {}
        for c in captured:  # the validator's files are data.safe_name(index, id): index -> the item's id
            index = int(Path(c.im_file).stem.split("_", 1)[0])
            images[items[index].id] = {"pred": c.pred.tolist(), "gt": c.gt.tolist()}
        absent = absent_in_training(class_names, self.train_counts)
        state = {
            "classes": list(class_names),
            "ap_method": self.ap_method,
            "images": images,
            "absent": list(absent),  # classes the training split had none of
            "keep_absent": self.keep_absent_classes,
        }
        return rows_from_scores(scores, class_names, absent, self.keep_absent_classes), state

    @classmethod
    def replicates(cls, state: dict[str, Any], draws: Any) -> dict[tuple[str, str], Any]:
        """The rows recomputed from the cached detections of each drawn image list: each image is matched once;
        COCO AP of all lists at once from image weights (``metrics.draw_class_ap``, ``draw_size_ap``), ultralytics'
        DetMetrics list by list (its own accumulation is the definition of ``ap_method="ultralytics"``)."""
        import numpy as np

        from downstream.detection.metrics import (
            draw_class_ap,
            draw_size_ap,
            image_stats,
            mean_present,
            score_images,
            size_image_stats,
        )

        names = tuple(state["classes"])
        absent, keep = tuple(state.get("absent", ())), bool(state.get("keep_absent"))
        excluded = () if keep else absent
        skip = [names.index(name) for name in excluded]
        pairs = [
            (np.asarray(v["pred"], np.float64).reshape(-1, 6), np.asarray(v["gt"], np.float64).reshape(-1, 5))
            for v in state["images"].values()
        ]
        stats = [image_stats(pred, gt) for pred, gt in pairs]
        sizes = [size_image_stats(pred, gt, len(names)) for pred, gt in pairs]  # COCO's 100 per image, as evaluated
        picked = draw_positions(list(state["images"]), draws)
        size_ap = draw_size_ap(sizes, picked, len(names), skip)
        if state["ap_method"] == "ultralytics":
            out: dict[tuple[str, str], Any] = {}
            for r, draw in enumerate(picked):
                scores = score_images([stats[k] for k in draw[draw >= 0]], names, state["ap_method"])
                if set(excluded) & set(scores.per_class):
                    scores = without_classes(scores, excluded)
                scores.sizes = {size: float(v[r]) for size, v in size_ap.items() if np.isfinite(v[r])}
                for row in rows_from_scores(scores, names, absent, keep):
                    out.setdefault((row.metric, row.cls), np.full(len(picked), np.nan))[r] = row.value
            return out
        ap = draw_class_ap(stats, picked, len(names))  # (R, K, T)
        counted = np.delete(ap, np.asarray(skip, np.int64), axis=1)  # the classes of the "all" rows
        columns = {
            ("mAP50-95", CLASS_ALL): np.nan_to_num(mean_present(counted.reshape(len(ap), -1)), nan=0.0),
            ("mAP50", CLASS_ALL): np.nan_to_num(mean_present(counted[:, :, 0]), nan=0.0),
            **{(SIZE_METRICS[size], CLASS_ALL): v for size, v in size_ap.items()},
        }
        for c, name in enumerate(names):
            columns[("mAP50-95", name)] = ap[:, c].mean(axis=1)
            columns[("mAP50", name)] = ap[:, c, 0]
        return {key: v for key, v in columns.items() if np.isfinite(v).any()}

    def figure(
        self, images: dict[str, Path], crop: Box, truth: Mapping[str, Any], class_names: tuple[str, ...], workdir: Path
    ) -> Any:
        """The detector's detections (conf >= 0.25) on the crop of each image, ground truth dashed white."""
        from downstream.detection.figure import figure_from_task, tile

        safe = {label: label.replace("/", "_") for label in images}  # also the title drawn on each panel
        parts = figure_from_task(
            self,
            {safe[lab]: p for lab, p in images.items()},
            workdir,
            crop=crop,
            gt=truth.get(LABEL_BOXES),
            class_names=class_names,
        )
        return tile([parts[safe[lab]] for lab in images])


#: metric names of the per-size rows (COCO's names for AP50-95 over small / medium / large boxes)
SIZE_METRICS = {"small": "APs", "medium": "APm", "large": "APl"}


def rows_from_scores(
    scores: DetectionScores, class_names, absent: tuple[str, ...] = (), keep_absent: bool = False
) -> list[MetricRow]:
    """MetricRows: mAP50-95 and mAP50 for "all" (n = images) and each class with ground truth (n = its images);
    APs / APm / APl for "all" where the split has boxes of that size (COCOeval's rule, 100 detections per image).
    Rows of the ``absent`` classes (none in the training split) are flagged, the "all" rows too if ``keep_absent``
    (``scores`` already holds "all" with or without them)."""
    absent = tuple(name for name in absent if name in scores.per_class)  # those with a row
    flags = absent_flags(CLASS_ALL, absent, keep_absent)
    rows = [
        MetricRow("mAP50-95", scores.map50_95, CLASS_ALL, scores.images, flags=flags),
        MetricRow("mAP50", scores.map50, CLASS_ALL, scores.images, flags=flags),
    ]
    rows += [
        MetricRow(SIZE_METRICS[size], value, CLASS_ALL, scores.images, flags=flags)
        for size, value in scores.sizes.items()
    ]
    for name in class_names:
        cs = scores.per_class.get(name)
        if cs is None:
            continue  # no ground-truth instance: AP undefined (ultralytics and COCOeval leave it out too)
        flags = absent_flags(name, absent, keep_absent)
        rows += [
            MetricRow("mAP50-95", cs.map50_95, name, cs.images, flags=flags),
            MetricRow("mAP50", cs.map50, name, cs.images, flags=flags),
        ]
    return [r for r in rows if not (isinstance(r.value, float) and math.isnan(r.value))]


__all__ = ["DetectionTask", "rows_from_scores"]
