"""Task models bound to their classes: a mismatch is one error line naming both lists and the fix; flags."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, mask_source

from downstream.detection.task import DetectionTask
from downstream.errors import ClassMismatchError
from downstream.segmentation.task import SegmentationTask
from sr.vocab import FLAG_RANDOM_WEIGHTS, FLAG_SCRATCH_INIT

DEMO = REPO / "sr" / "weights" / "demo"  # trained task models bound to their classes (a random one fits any)


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_detector_for_other_classes_is_refused_in_one_line():
    task = DetectionTask(weights=str(DEMO / "yolo_demo_synthir.pt"), classes=["People", "Car"], imgsz=64)
    with pytest.raises(ClassMismatchError) as exc:
        task.check_classes(("Person", "Car", "Bicycle"))
    _one_line(
        exc, "['People', 'Car']", "['Person', 'Car', 'Bicycle']", "python -m downstream.detection.train --dataset"
    )
    task.check_classes(("People", "Car"))


def test_segmenter_for_other_classes_is_refused_in_one_line(tmp_path):
    from downstream.tasks import TaskItem

    task = SegmentationTask(
        weights=str(DEMO / "segformer_demo_synthir.pth"),
        variant="mit_tiny",
        device="cpu",
        classes=["background", "target"],
    )
    with pytest.raises(ClassMismatchError) as exc:
        task.evaluate(
            [TaskItem("a", tmp_path / "a.png", {"mask": np.zeros((8, 8), np.uint8)})],
            ("road", "person", "car"),
            tmp_path,
        )
    _one_line(exc, "['background', 'target']", "['road', 'person', 'car']", "downstream.segmentation.train")


def test_scratch_and_random_flags_use_the_shared_names():
    det = DetectionTask(random_weights=True, model="yolov5n.yaml", classes=["a"], scratch_init=True)
    seg = SegmentationTask(variant="mit_tiny", random_weights=True, scratch_init=True)
    assert set(det.flags) == set(seg.flags) == {FLAG_RANDOM_WEIGHTS, FLAG_SCRATCH_INIT}
    assert SegmentationTask(variant="mit_tiny", random_weights=True).flags == (FLAG_RANDOM_WEIGHTS,)


@pytest.mark.slow
def test_segmenter_training_uses_a_pretrained_backbone_when_its_file_is_there(tmp_path, monkeypatch):
    """train --dataset: scratch without the ImageNet file (flagged in task.yaml), the file's weights when present."""
    import torch
    import yaml

    from downstream.segmentation.model import build_segformer
    from downstream.segmentation.prepare import prepare_masks
    from downstream.segmentation.train import main
    from sr import weights as registry

    mask_source(tmp_path / "src")
    prepare_masks(tmp_path / "src", tmp_path / "data")
    args = [
        "--dataset",
        str(tmp_path / "data" / "dataset.yaml"),
        "--model",
        "mit_b0",
        "--iters",
        "1",
        "--crop",
        "32",
        "--batch",
        "2",
        "--device",
        "cpu",
    ]
    assert main([*args, "--out", str(tmp_path / "scratch")]) == 0
    spec = yaml.safe_load((tmp_path / "scratch" / "task.yaml").read_text())
    assert spec["options"]["scratch_init"] is True and spec["options"]["classes"] == ["background", "target"]
    counts = spec["options"]["train_counts"]  # labelled pixels per class of the training frames (32 x 32 each)
    assert set(counts) == {"background", "target"} and counts["target"] > 0 and sum(counts.values()) % (32 * 32) == 0
    assert spec["options"]["keep_absent_classes"] is False

    backbone = build_segformer("mit_b0", 2).backbone.state_dict()
    path = registry.path_of("mit_b0_imagenet")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"backbone.{k}": v for k, v in backbone.items()}, path)
    assert main([*args, "--out", str(tmp_path / "pretrained")]) == 0
    spec = yaml.safe_load((tmp_path / "pretrained" / "task.yaml").read_text())
    assert spec["options"]["scratch_init"] is False and "mit_b0_imagenet" in spec["description"]
    log = (tmp_path / "pretrained" / "train_log.jsonl").read_text().splitlines()[0]
    assert str(path) in log  # the trainer loaded that file
