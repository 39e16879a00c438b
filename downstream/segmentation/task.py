"""``SegmentationTask``: SegFormer on SR frames -> IoU per class, mIoU and aAcc result rows.

Options (``configs/tasks/segmentation_*.yaml`` ``options`` plus the runner's common ones):

``weights``        registry name (``configs/weights.yaml``) or a file path, found by
                   ``sr.weights.resolve_weights``; a plain state dict
``variant``        ``mit_b1`` (paper), ``mit_b0``, ``mit_tiny`` (demo); see ``model.VARIANTS``
``mode``           ``whole`` (default) or ``slide`` inference, with ``crop_size`` / ``stride`` (H, W)
``ignore_classes`` class names no metric counts (FMB: ``[unlabeled]``): their label pixels are
                   ignored, the model never predicts them, and they get no IoU row (names the data set does
                   not have are skipped: whether the model fits the data set is ``classes``' check)
``device``         ``cpu``, ``cuda``, ``cuda:N`` or ``auto``; ``weights_dir`` overrides the weights
                   directory; ``random_weights`` builds the network with random weights (seeded by
                   ``seed``) where the weights file is missing, and flags every row
                   ``sr.vocab.FLAG_RANDOM_WEIGHTS``
``save_predictions`` writes each predicted id map as ``<workdir>/pred/<id>.png``
``classes``        the model's class names (written by ``train --dataset``), checked against the data set's
``scratch_init``   the model was trained without a pretrained backbone: every row gets that flag
``train_counts``   labelled pixels per class in the model's training split (written by ``train --dataset``): a
                   class counted 0 is flagged ``class_absent_in_training`` on its IoU row and left out of mIoU
                   (value and bootstrap replicates); unknown (no key) flags nothing
``keep_absent_classes`` keep such classes in mIoU (then flagged too; ``train --keep-absent-classes``)

Rows: metric ``IoU`` with ``cls`` = class name (classes neither labelled nor predicted in the whole
split have no row: they are NaN and left out of mIoU, as in mmseg), ``mIoU`` and ``aAcc`` with
``cls="all"``; values are fractions; ``n`` = number of images. Binary target masks (two classes, SIRST-like)
add the infrared small-target rows ``nIoU``, ``Pd`` and ``Fa`` (``metrics.SmallTargetAccumulator``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from downstream.bootstrap import resample_weights
from downstream.errors import ClassMismatchError
from downstream.imageio import read_image
from downstream.sample import IGNORE_INDEX, LABEL_MASK
from downstream.segmentation.metrics import ConfusionAccumulator, SmallTargetAccumulator, mean_iou, scores
from downstream.task_flags import absent_flags, absent_in_training, check_train_counts
from downstream.tasks import Box, MetricRow, ResultMetric, Task, TaskItem, TaskReport, draw_positions
from sr.errors import ConfigError
from sr.runtime import DEVICE_AUTO, resolve_device
from sr.vocab import CLASS_ALL, FLAG_RANDOM_WEIGHTS, FLAG_SCRATCH_INIT
from sr.weights import random_where_missing, resolve_weights

WHAT = "segmentation weights"  # names the option in resolve_weights' errors


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"segmentation {what} must be an int or [H, W], got {value!r}") from None
    return h, w


class SegmentationTask(Task):
    name = "segmentation"
    labels = (LABEL_MASK,)
    libraries = ("mmsegmentation", "mmengine", "mmcv-lite", "torch")
    metrics = (
        ResultMetric("IoU", per_class=True),
        ResultMetric("mIoU"),
        ResultMetric("aAcc"),
        ResultMetric("nIoU"),
        ResultMetric("Pd"),
        ResultMetric("Fa", higher_better=False),
    )
    report = TaskReport(
        per_class="IoU",
        overall="mIoU",
        overall_label="mIoU",
        figure="predicted segmentation masks (last panel: ground truth)",
    )

    def __init__(
        self,
        *,
        weights: str | None = None,
        variant: str = "mit_b1",
        mode: str = "whole",
        crop_size: Any = (512, 512),
        stride: Any = (341, 341),
        ignore_classes: list[str] | None = None,
        device: str | None = DEVICE_AUTO,
        weights_dir: str | None = None,
        random_weights: bool = False,
        seed: int = 0,
        save_predictions: bool = False,
        num_classes: int | None = None,
        description: str | None = None,
        classes: list[str] | None = None,
        scratch_init: bool = False,
        train_counts: dict[str, int] | None = None,
        keep_absent_classes: bool = False,
    ):
        from downstream.segmentation.model import VARIANTS

        if variant not in VARIANTS:
            raise ConfigError(f"segmentation variant {variant!r} unknown; known: {', '.join(VARIANTS)}")
        if mode not in ("whole", "slide"):
            raise ConfigError(f"segmentation mode must be 'whole' or 'slide', got {mode!r}")
        if not weights and not random_weights:
            raise ConfigError("segmentation task needs 'weights' (registry name or file) or random_weights=True")
        # random weights only when the file is missing (a file that is there is used even with --random-weights)
        random_weights = random_where_missing(
            random_weights, weights and (lambda: resolve_weights(weights, weights_dir, what=WHAT))
        )
        self.weights = weights
        self.variant = variant
        self.mode = mode
        self.crop_size = _pair(crop_size, "crop_size")
        self.stride = _pair(stride, "stride")
        self.ignore_classes = tuple(ignore_classes or ())
        self.device = device
        self.weights_dir = weights_dir
        self.random_weights = bool(random_weights)
        self.seed = int(seed)
        self.save_predictions = bool(save_predictions)
        self.classes = tuple(classes) if classes else None
        self.num_classes = len(self.classes) if self.classes else num_classes
        self.scratch_init = bool(scratch_init)
        self.train_counts = check_train_counts(train_counts, "segmentation")
        self.keep_absent_classes = bool(keep_absent_classes)
        self._model: torch.nn.Module | None = None
        self._model_classes: int | None = None
        self._weights_path: Path | None = None

    # ------------------------------------------------------------------------------------ contract
    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(
            flag
            for flag, on in ((FLAG_RANDOM_WEIGHTS, self.random_weights), (FLAG_SCRATCH_INIT, self.scratch_init))
            if on
        )

    def check_classes(self, class_names) -> None:
        """A one-line UserError naming both class lists and the fix when the model's classes are not the data set's
        (a random network is built for each data set's classes, so it fits any)."""
        if self.random_weights:
            return
        if self.classes is not None and tuple(class_names) != self.classes:
            raise ClassMismatchError("segmenter", self.classes, class_names, "segmentation")
        if self.num_classes is not None and int(self.num_classes) != len(class_names):
            raise ClassMismatchError("segmenter", [f"{self.num_classes} classes"], class_names, "segmentation")

    def weights_path(self) -> Path | None:
        if self.random_weights:
            return None
        if self._weights_path is None:
            self._weights_path = resolve_weights(self.weights, self.weights_dir, what=WHAT)
        return self._weights_path

    def identity(self) -> dict[str, Any]:
        from sr.weights import sha256_of

        path = self.weights_path()
        ident: dict[str, Any] = {
            "name": self.name,
            "variant": self.variant,
            "mode": self.mode,
            "weights_sha256": sha256_of(path) if path else f"random(seed={self.seed})",
            "ignore_classes": list(self.ignore_classes),
        }
        if self.mode == "slide":
            ident.update(crop_size=list(self.crop_size), stride=list(self.stride))
        if self.train_counts is not None:  # unknown counts change nothing (earlier cache entries stay valid)
            ident.update(train_counts=self.train_counts, keep_absent_classes=self.keep_absent_classes)
        return ident

    def model(self, num_classes: int) -> torch.nn.Module:
        """The network for ``num_classes`` outputs, built and loaded once."""
        from downstream.segmentation.model import (
            build_segformer,
            load_segformer_weights,
        )

        if self.num_classes is not None and int(self.num_classes) != num_classes and not self.random_weights:
            raise ConfigError(
                f"segmentation task configured for {self.num_classes} classes, data set has {num_classes}"
            )
        if self._model is None or self._model_classes != num_classes:
            if self.random_weights:
                torch.manual_seed(self.seed)
            model = build_segformer(
                self.variant, num_classes, test_mode=self.mode, crop_size=self.crop_size, stride=self.stride
            )
            if not self.random_weights:
                load_segformer_weights(model, self.weights_path())
            self._model = model.to(resolve_device(self.device)).eval()
            self._model_classes = num_classes
        return self._model

    def predict(
        self,
        image: np.ndarray,
        num_classes: int,
        out_size: tuple[int, int] | None = None,
        blocked: tuple[int, ...] = (),
    ) -> np.ndarray:
        """``(H, W, C)`` float [0, 1] image -> ``(H, W)`` uint8 class ids."""
        from downstream.segmentation.model import predict_logits

        model = self.model(num_classes)
        device = next(model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().to(device)
        logits = predict_logits(model, x, out_size)
        if blocked:
            logits[:, list(blocked)] = float("-inf")
        return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()

    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        return self.evaluate_with_state(items, class_names, workdir)[0]

    def evaluate_with_state(
        self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path
    ) -> tuple[list[MetricRow], dict[str, Any]]:
        """The rows, and per image its confusion matrix (plus its small-target counts for binary masks)."""
        class_names = tuple(class_names)
        self.check_classes(class_names)
        num_classes = len(class_names)
        ignored = tuple(class_names.index(c) for c in self.ignore_classes if c in class_names)
        acc = ConfusionAccumulator(num_classes)
        small = SmallTargetAccumulator(target=1) if is_binary_target(class_names, ignored) else None
        pred_dir = Path(workdir) / "pred"
        per_image: dict[str, dict[str, Any]] = {}
        for item in items:
            label = np.asarray(item.label(LABEL_MASK))
            if ignored:
                label = np.where(np.isin(label, ignored), IGNORE_INDEX, label)
            image = read_image(item.image, channels="auto")
            pred = self.predict(image, num_classes, out_size=label.shape, blocked=ignored)
            per_image[item.id] = {"confusion": acc.update(pred, label).tolist()}
            if small is not None:
                one = SmallTargetAccumulator(target=1)
                one.update(pred, label)
                per_image[item.id]["small_target"] = one.state()
            if self.save_predictions:
                from PIL import Image

                pred_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pred, mode="L").save(pred_dir / f"{item.id}.png")
        if small is not None:
            small = SmallTargetAccumulator.merged([v["small_target"] for v in per_image.values()])
        absent = absent_in_training(class_names, self.train_counts)
        state = {
            "classes": list(class_names),
            "ignored": list(ignored),
            "images": per_image,
            "absent": list(absent),  # classes the training split had no pixel of
            "keep_absent": self.keep_absent_classes,
        }
        return rows_from_scores(acc, class_names, ignored, small, absent, self.keep_absent_classes), state

    @classmethod
    def replicates(cls, state: dict[str, Any], draws: Any) -> dict[tuple[str, str], np.ndarray]:
        """The rows on each drawn list at once: a list is a vector of image weights (how often each image was drawn),
        its confusion matrix (and small-target counts) the weighted sum of the images' (array work, no loop)."""
        names, ignored = tuple(state["classes"]), tuple(state["ignored"])
        images = state["images"]
        picked = draw_positions(list(images), draws)
        weights = resample_weights(picked, len(images))
        matrices = np.array([v["confusion"] for v in images.values()], dtype=np.int64).reshape(len(images), -1)
        res = scores((weights @ matrices).reshape(len(picked), len(names), len(names)))
        out = {
            ("IoU", name): res.iou[:, i] / 100.0
            for i, name in enumerate(names)
            if i not in ignored and np.isfinite(res.iou[:, i]).any()
        }
        excluded = () if state.get("keep_absent") else state.get("absent", ())
        out[("mIoU", CLASS_ALL)] = mean_iou(res.iou, [names.index(name) for name in excluded]) / 100.0
        out[("aAcc", CLASS_ALL)] = res.aacc / 100.0
        small = [v.get("small_target") for v in images.values()]
        if small and small[0]:
            counts = {k: weights @ np.array([st[k] for st in small], np.int64) for k in SmallTargetAccumulator._COUNTS}
            per_image = weights @ np.array([sum(st["per_image"]) for st in small], np.float64)
            per_image_n = weights @ np.array([len(st["per_image"]) for st in small], np.int64)
            with np.errstate(divide="ignore", invalid="ignore"):
                for metric, num, den in (
                    ("nIoU", per_image, per_image_n),
                    ("Pd", counts["detected"], counts["targets"]),
                    ("Fa", counts["false_pixels"], counts["pixels"]),
                ):
                    value = np.where(den > 0, num / den, np.nan)
                    if np.isfinite(value).any():
                        out[(metric, CLASS_ALL)] = value
        return out

    def figure(
        self, images: dict[str, Path], crop: Box, truth: Mapping[str, Any], class_names: tuple[str, ...], workdir: Path
    ) -> Any:
        """Each image's predicted mask over the crop, the ground truth as the last panel."""
        from downstream.segmentation.figure import figure_from_files

        if not class_names:
            raise ValueError("the segmentation classes of the data set are unknown")
        x0, y0, x1, y1 = crop
        gt = truth.get(LABEL_MASK)
        return figure_from_files(
            self,
            images,
            tuple(class_names),
            gt=gt,
            box=(x0, y0, x1 - x0, y1 - y0),
            zoom=max(1, 288 // max(x1 - x0, y1 - y0)),
            columns=min(4, len(images) + (gt is not None)),
        )


def is_binary_target(class_names: tuple[str, ...], ignored: tuple[int, ...] = ()) -> bool:
    """Two classes, id 0 the background and id 1 the target (SIRST-like small-target masks), none ignored."""
    return len(class_names) == 2 and not ignored


def rows_from_scores(
    acc: ConfusionAccumulator,
    class_names: tuple[str, ...],
    ignored: tuple[int, ...] = (),
    small: SmallTargetAccumulator | None = None,
    absent: tuple[str, ...] = (),
    keep_absent: bool = False,
) -> list[MetricRow]:
    """Result rows: IoU per (counted, non-NaN) class, then mIoU and aAcc over ``cls='all'``.

    Rows hold fractions in [0, 1], like detection's mAP rows (``metrics.scores`` keeps mmseg's percent). With a
    small-target accumulator (binary target masks) also ``nIoU``, ``Pd`` and ``Fa`` (a fraction of pixels; papers
    print it x 1e6) over ``cls='all'``; the target's ``IoU`` row is the literature's IoU. The ``absent`` classes
    (none in the training split) are flagged and left out of mIoU, unless ``keep_absent`` (then mIoU is flagged too).
    """
    res = acc.scores()
    n = acc.images
    counted = [i for i, v in enumerate(res.iou) if i not in ignored and np.isfinite(v)]  # the classes with a row
    absent = tuple(name for name in absent if class_names.index(name) in counted)
    rows = [
        MetricRow("IoU", float(res.iou[i]) / 100.0, cls=name, n=n, flags=absent_flags(name, absent, keep_absent))
        for i, name in ((i, class_names[i]) for i in counted)
    ]
    skip = [] if keep_absent else [class_names.index(name) for name in absent]
    miou = float(mean_iou(res.iou, skip)) / 100.0
    rows.append(MetricRow("mIoU", miou, cls=CLASS_ALL, n=n, flags=absent_flags(CLASS_ALL, absent, keep_absent)))
    rows.append(MetricRow("aAcc", res.aacc / 100.0, cls=CLASS_ALL, n=n))
    if small is not None:
        st = small.scores()
        rows += [
            MetricRow(metric, value, cls=CLASS_ALL, n=n)
            for metric, value in (("nIoU", st.niou), ("Pd", st.pd), ("Fa", st.fa))
            if np.isfinite(value)
        ]
    return rows
