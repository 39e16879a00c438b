"""Task models bound to their classes: a mismatch is one error line naming both lists and the fix; flags."""
from __future__ import annotations

import numpy as np
import pytest

from downstream.detection.task import DetectionTask
from downstream.errors import ClassMismatchError
from downstream.segmentation.task import SegmentationTask
from sr.vocab import FLAG_RANDOM_WEIGHTS, FLAG_SCRATCH_INIT


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_detector_for_other_classes_is_refused_in_one_line():
    task = DetectionTask(random_weights=True, model="yolov5n.yaml", classes=["People", "Car"], imgsz=64)
    with pytest.raises(ClassMismatchError) as exc:
        task.check_classes(("Person", "Car", "Bicycle"))
    _one_line(exc, "['People', 'Car']", "['Person', 'Car', 'Bicycle']",
              "python -m downstream.detection.train --dataset")
    task.check_classes(("People", "Car"))


def test_segmenter_for_other_classes_is_refused_in_one_line(tmp_path):
    from downstream.tasks import TaskItem

    task = SegmentationTask(variant="mit_tiny", random_weights=True, device="cpu", classes=["background", "target"])
    with pytest.raises(ClassMismatchError) as exc:
        task.evaluate([TaskItem("a", tmp_path / "a.png", {"mask": np.zeros((8, 8), np.uint8)})],
                      ("road", "person", "car"), tmp_path)
    _one_line(exc, "['background', 'target']", "['road', 'person', 'car']", "downstream.segmentation.train")


def test_scratch_and_random_flags_use_the_shared_names():
    det = DetectionTask(random_weights=True, model="yolov5n.yaml", classes=["a"], scratch_init=True)
    seg = SegmentationTask(variant="mit_tiny", random_weights=True, scratch_init=True)
    assert set(det.flags) == set(seg.flags) == {FLAG_RANDOM_WEIGHTS, FLAG_SCRATCH_INIT}
    assert SegmentationTask(variant="mit_tiny", random_weights=True).flags == (FLAG_RANDOM_WEIGHTS,)
