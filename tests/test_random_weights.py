"""``--random-weights`` does what its help says: random weights only where a weights file is missing.

Committed demo weights are used (and hashed into run.json) even with the option; only components whose file is
absent are random and flagged; a random detector is built per data set, for that data set's classes.
"""

from __future__ import annotations

import json

import numpy as np
from conftest import REPO
from PIL import Image

from benchmarks.run import main as run_main
from downstream.detection.task import DetectionTask
from downstream.metrics import QualityMetric
from downstream.segmentation.task import SegmentationTask
from downstream.tasks import TaskItem
from reports.tables import load_results
from sr.registry import load_method
from sr.vocab import FLAG_RANDOM_WEIGHTS, split_flags
from sr.weights import sha256_of

DEMO = REPO / "sr" / "weights" / "demo"


def test_files_that_are_there_are_used_and_missing_ones_are_random():
    method = load_method("difiisr_demo", random_weights=True)
    assert FLAG_RANDOM_WEIGHTS not in method.flags and method.weight_files()["unet"].name == "difiisr_demo.safetensors"
    det = DetectionTask(weights=str(DEMO / "yolo_demo_synthir.pt"), random_weights=True, imgsz=320)
    assert det.flags == () and det.identity()["weights"]["sha256"] == sha256_of(DEMO / "yolo_demo_synthir.pt")
    seg = SegmentationTask(weights=str(DEMO / "segformer_demo_synthir.pth"), variant="mit_tiny", random_weights=True)
    assert seg.flags == () and seg.identity()["weights_sha256"] == sha256_of(DEMO / "segformer_demo_synthir.pth")
    # the test's weights directory is empty: these files are missing, so random (and flagged)
    assert FLAG_RANDOM_WEIGHTS in load_method("esrgan", random_weights=True).flags
    assert QualityMetric("lpips", random_weights=True).flags == (FLAG_RANDOM_WEIGHTS,)
    assert DetectionTask(weights="yolov5s_m3fd", random_weights=True).flags == (FLAG_RANDOM_WEIGHTS,)


def test_committed_demo_weights_are_used_by_a_random_weights_run(tmp_path):
    out = tmp_path / "run"
    assert (
        run_main(
            [
                "--datasets",
                "synthir_demo",
                "--methods",
                "difiisr_demo",
                "--random-weights",
                "--tasks",
                "quality",
                "--metrics",
                "psnr",
                "--limit",
                "1",
                "--out",
                str(out),
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    meta = json.loads((out / "run.json").read_text())
    ident = meta["methods"]["difiisr_demo"]
    assert ident["weights"]["unet"] == sha256_of(DEMO / "difiisr_demo.safetensors")
    assert FLAG_RANDOM_WEIGHTS not in ident["flags"]
    row = load_results(out / "results.csv").query("metric == 'psnr'").iloc[0]
    assert FLAG_RANDOM_WEIGHTS not in split_flags(row["flags"]) and row["value"] > 20


def _items(tmp_path, name: str, n_classes: int) -> list[TaskItem]:
    rng = np.random.default_rng(len(name))
    items = []
    for i in range(2):
        path = tmp_path / f"{name}_{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
        boxes = np.array([[c, 4 + 10 * c, 8, 14 + 10 * c, 30] for c in range(n_classes)], np.float32)
        items.append(TaskItem(f"{name}{i}", path, {"boxes": boxes}))
    return items


def test_a_random_detector_is_built_for_each_data_sets_classes(tmp_path):
    """One task object (as the runner keeps it) on two data sets with different classes, in both orders."""
    first, second = ("People", "Car"), ("cat", "dog", "bird")
    task = DetectionTask(
        weights="yolov5s_m3fd",
        random_weights=True,
        model="yolov5n.yaml",
        imgsz=64,
        classes=["People", "Car", "Bus", "Motorcycle", "Lamp", "Truck"],
    )
    for classes in (first, second, first):
        task.check_classes(classes)
        rows = task.evaluate(_items(tmp_path, classes[0], len(classes)), classes, tmp_path / "work" / classes[0])
        assert {r.cls for r in rows if r.metric == "mAP50"} == {"all", *classes}
        assert task.class_names == list(classes)
