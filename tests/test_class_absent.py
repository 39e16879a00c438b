"""A class present in the evaluation split but absent from the task model's training split: its rows are
flagged ``class_absent_in_training``, it is left out of the ``all`` rows (value and bootstrap replicates alike, equal
to pycocotools / mmseg recomputed without the class), ``keep_absent_classes`` keeps it there (flagged), and unknown
training counts flag nothing. The counts come from the trainers (task.yaml's ``train_counts``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from coco_oracle import coco_score
from conftest import mask_source
from PIL import Image

from downstream.bootstrap import percentile_interval, resample_indices
from downstream.detection.task import DetectionTask
from downstream.segmentation.task import SegmentationTask
from downstream.tasks import TaskItem
from sr.errors import ConfigError
from sr.vocab import CLASS_ALL, FLAG_CLASS_ABSENT_IN_TRAINING, split_flags

CLASSES = ("a", "b", "c")
ABSENT = "c"  # the class the training split had none of
COUNTS = {"a": 40, "b": 12, "c": 0}


def _detections(n_images=8, seed=0):
    """Per image: ground truth (cls, x1, y1, x2, y2) of every class and noisy detections (x1, y1, x2, y2, conf, cls)
    in 448x448 pixels, boxes of several COCO sizes; class c is detected worse than the others."""
    rng = np.random.default_rng(seed)
    images = {}
    for i in range(n_images):
        n = int(rng.integers(2, 6))
        xy = rng.uniform(0, 280, (n, 2))
        g = np.c_[rng.integers(0, 3, n), xy, xy + rng.choice([12.0, 60.0, 140.0], (n, 1)) + rng.uniform(0, 8, (n, 2))]
        p = []
        for box in g:
            if rng.random() < (0.3 if box[0] == 2 else 0.85):
                p.append([*(box[1:] + rng.normal(0, 4, 4)), rng.random(), box[0]])
        for _ in range(int(rng.integers(0, 3))):  # false positives
            x, y = rng.uniform(0, 400, 2)
            p.append([x, y, x + 30, y + 30, rng.random(), rng.integers(0, 3)])
        p = np.array(p, dtype=np.float64).reshape(-1, 6)
        p[:, 2:4] = np.maximum(p[:, 2:4], p[:, :2] + 1)
        images[f"frame{i:02d}"] = (p, g)
    return images


def _without(array: np.ndarray, column: int, cls: int) -> np.ndarray:
    return array[array[:, column] != cls]


def _evaluate(tmp_path, monkeypatch, images, **options):
    """DetectionTask.evaluate_with_state on frames whose validator output is ``images`` (the validator replaced:
    the detections are given, everything after it is the task's own code)."""
    import downstream.detection.yolo as yolo

    items = []
    for image_id, (_, gt) in images.items():
        path = tmp_path / "frames" / f"{image_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((448, 448), np.uint8)).save(path)
        items.append(TaskItem(image_id, path, {"boxes": gt.astype(np.float32)}))
    captured = [
        SimpleNamespace(pred=pred, gt=gt, im_file=f"{i:06d}_{image_id}.png")
        for i, (image_id, (pred, gt)) in enumerate(images.items())
    ]
    monkeypatch.setattr(yolo, "validate", lambda *a, **k: (None, captured))
    task = DetectionTask(random_weights=True, model="yolov5n.yaml", classes=list(CLASSES), imgsz=64, **options)
    return task.evaluate_with_state(items, CLASSES, tmp_path / "work")


def _by_key(rows):
    return {(r.metric, r.cls): r for r in rows}


def test_detection_leaves_a_class_absent_from_training_out_of_all_and_flags_it(tmp_path, monkeypatch):
    images = _detections()
    preds, gts = [p for p, _ in images.values()], [g for _, g in images.values()]
    c = CLASSES.index(ABSENT)
    full = coco_score(preds, gts, CLASSES)
    without = coco_score([_without(p, 5, c) for p in preds], [_without(g, 0, c) for g in gts], CLASSES)
    assert abs(full.map50_95 - without.map50_95) > 0.01  # the class moves the mean: the test can tell

    rows, state = _evaluate(tmp_path / "excluded", monkeypatch, images, train_counts=COUNTS)
    rows = _by_key(rows)
    assert rows[("mAP50-95", CLASS_ALL)].value == pytest.approx(without.map50_95, abs=1e-9)
    assert rows[("mAP50", CLASS_ALL)].value == pytest.approx(without.map50, abs=1e-9)
    for size, metric in (("small", "APs"), ("medium", "APm"), ("large", "APl")):
        assert rows[(metric, CLASS_ALL)].value == pytest.approx(without.sizes[size], abs=1e-9)
        assert rows[(metric, CLASS_ALL)].flags == ()
    assert rows[("mAP50-95", ABSENT)].value == pytest.approx(full.per_class[ABSENT].map50_95, abs=1e-9)
    for metric in ("mAP50-95", "mAP50"):
        assert rows[(metric, ABSENT)].flags == (FLAG_CLASS_ABSENT_IN_TRAINING,)
        assert rows[(metric, "a")].flags == rows[(metric, "b")].flags == rows[(metric, CLASS_ALL)].flags == ()

    # the bootstrap replicates of "all": pycocotools on each drawn list without the class
    ids = np.array(list(images))
    draws = ids[resample_indices(len(ids), 30, seed=4)]
    reps = DetectionTask.replicates(state, draws)
    direct = np.array(
        [
            coco_score(
                [_without(images[i][0], 5, c) for i in draw], [_without(images[i][1], 0, c) for i in draw], CLASSES
            ).map50_95
            for draw in draws
        ]
    )
    np.testing.assert_allclose(reps[("mAP50-95", CLASS_ALL)], direct, atol=1e-9)
    assert percentile_interval(reps[("mAP50-95", CLASS_ALL)]) == pytest.approx(percentile_interval(direct), abs=1e-9)
    # ultralytics' AP method averages the same classes
    ultra = DetectionTask.replicates({**state, "ap_method": "ultralytics"}, draws)
    kept = np.mean([ultra[("mAP50-95", name)] for name in CLASSES if name != ABSENT], axis=0)
    np.testing.assert_allclose(ultra[("mAP50-95", CLASS_ALL)], kept, atol=1e-9)

    # keep_absent_classes: the class stays in "all", which is flagged too
    rows, state = _evaluate(tmp_path / "kept", monkeypatch, images, train_counts=COUNTS, keep_absent_classes=True)
    rows = _by_key(rows)
    assert rows[("mAP50-95", CLASS_ALL)].value == pytest.approx(full.map50_95, abs=1e-9)
    assert rows[("mAP50-95", CLASS_ALL)].flags == rows[("mAP50-95", ABSENT)].flags == (FLAG_CLASS_ABSENT_IN_TRAINING,)
    full_direct = [coco_score([images[i][0] for i in d], [images[i][1] for i in d], CLASSES).map50_95 for d in draws]
    np.testing.assert_allclose(DetectionTask.replicates(state, draws)[("mAP50-95", CLASS_ALL)], full_direct, atol=1e-9)

    # unknown training counts (the committed demo configs): nothing flagged, nothing left out
    rows, _ = _evaluate(tmp_path / "unknown", monkeypatch, images)
    assert all(not r.flags for r in rows)
    assert _by_key(rows)[("mAP50-95", CLASS_ALL)].value == pytest.approx(full.map50_95, abs=1e-9)


def test_segmentation_leaves_a_class_absent_from_training_out_of_miou(tmp_path, monkeypatch):
    from downstream.segmentation.metrics import mmseg_iou_metric

    rng = np.random.default_rng(3)
    names = ("c0", "c1", "c2", "c3")
    frames = {}
    for i in range(6):
        lab = rng.integers(0, 4, size=(12, 16)).astype(np.uint8)
        pred = np.where(rng.random(lab.shape) < 0.7, lab, rng.integers(0, 4, size=lab.shape)).astype(np.uint8)
        pred[lab == 2] = 0  # the class absent from training is never found
        frames[f"f{i}"] = (pred, lab)
    items = []
    for image_id in frames:
        Image.fromarray(np.zeros((12, 16), np.uint8)).save(tmp_path / f"{image_id}.png")
        items.append(TaskItem(image_id, tmp_path / f"{image_id}.png", {"mask": frames[image_id][1]}))
    order = iter(list(frames) * 3)
    monkeypatch.setattr(SegmentationTask, "predict", lambda self, *a, **k: frames[next(order)][0])
    counts = {"c0": 900, "c1": 50, "c2": 0, "c3": 7}

    def evaluate(**options):
        task = SegmentationTask(variant="mit_tiny", random_weights=True, device="cpu", **options)
        rows, state = task.evaluate_with_state(items, names, tmp_path / "work")
        return _by_key(rows), state

    _, per_class = mmseg_iou_metric([p for p, _ in frames.values()], [lab for _, lab in frames.values()], names)
    rows, state = evaluate(train_counts=counts)
    # mmseg's IoUs are float32: agreement to 1e-6
    assert rows[("mIoU", CLASS_ALL)].value == pytest.approx(np.mean(np.delete(per_class["IoU"], 2)), abs=1e-6)
    assert rows[("mIoU", CLASS_ALL)].value != pytest.approx(np.mean(per_class["IoU"]), abs=1e-3)
    assert rows[("IoU", "c2")].flags == (FLAG_CLASS_ABSENT_IN_TRAINING,) and rows[("IoU", "c1")].flags == ()
    assert rows[("mIoU", CLASS_ALL)].flags == ()
    ids = np.array(list(frames))
    draws = ids[resample_indices(len(ids), 8, seed=1)]
    reps = SegmentationTask.replicates(state, draws)
    for r, draw in enumerate(draws):
        _, ref = mmseg_iou_metric([frames[i][0] for i in draw], [frames[i][1] for i in draw], names)
        assert reps[("mIoU", CLASS_ALL)][r] == pytest.approx(np.nanmean(np.delete(ref["IoU"], 2)), abs=1e-6)

    rows, _ = evaluate(train_counts=counts, keep_absent_classes=True)
    assert rows[("mIoU", CLASS_ALL)].value == pytest.approx(np.mean(per_class["IoU"]), abs=1e-6)
    assert rows[("mIoU", CLASS_ALL)].flags == rows[("IoU", "c2")].flags == (FLAG_CLASS_ABSENT_IN_TRAINING,)
    rows, _ = evaluate()
    assert all(not r.flags for r in rows.values())


@pytest.mark.parametrize("bad", [{"a": -1}, ["a"], {"a": 1.5}, {"a": True}])
def test_train_counts_that_are_not_counts_are_a_config_error(bad):
    with pytest.raises(ConfigError, match="train_counts"):
        DetectionTask(random_weights=True, classes=list(CLASSES), train_counts=bad)
    with pytest.raises(ConfigError, match="train_counts"):
        SegmentationTask(variant="mit_tiny", random_weights=True, train_counts=bad)


def test_detection_trainer_records_the_training_boxes_per_class_in_task_yaml(tmp_path):
    from downstream.detection.train import _count_boxes, write_detection_task
    from downstream.tasks import load_task

    boxes = [np.array([[0, 1, 1, 5, 5], [0, 2, 2, 6, 6]]), None, np.array([[1, 1, 1, 5, 5]]), np.zeros((0, 5))]
    counts = np.zeros(3, np.int64)
    passed = list(_count_boxes(((f"s{i}", None, b) for i, b in enumerate(boxes)), counts))
    assert [p[2] is b for p, b in zip(passed, boxes)] == [True] * 4 and counts.tolist() == [2, 1, 0]
    cfg = {"model": "yolov5n.yaml", "init": None, "classes": list(CLASSES), "train": {"imgsz": 64, "epochs": 1}}
    counts = dict(zip(CLASSES, counts.tolist()))
    path = write_detection_task(tmp_path, tmp_path / "detector.pt", cfg, "mine", counts, True)
    options = yaml.safe_load(path.read_text())["options"]
    assert options["train_counts"] == {"a": 2, "b": 1, "c": 0} and options["keep_absent_classes"] is True
    task = load_task(str(path), device="cpu", weights_dir=None, random_weights=True)  # detector.pt not written here
    assert task.train_counts == {"a": 2, "b": 1, "c": 0} and task.keep_absent_classes
    assert task.identity()["train_counts"] == {"a": 2, "b": 1, "c": 0}


def test_segmentation_trainer_counts_the_labelled_pixels_of_the_training_split(tmp_path):
    from downstream.datasets import load_dataset
    from downstream.segmentation.prepare import prepare_masks
    from downstream.segmentation.train import class_pixel_counts

    mask_source(tmp_path / "src", growing=True)
    prepare_masks(tmp_path / "src", tmp_path / "data")
    data = str(tmp_path / "data" / "dataset.yaml")
    train = load_dataset(data, split="train")
    masks = [np.asarray(train.load(i).mask) for i in train.ids()]
    counts = class_pixel_counts({"dataset": data, "options": {"split": "train"}}, [])
    assert counts == {"background": sum(int((m == 0).sum()) for m in masks), "target": sum(int(m.sum()) for m in masks)}
    assert counts["target"] > 0 and sum(counts.values()) == len(masks) * 32 * 32
    assert class_pixel_counts({"dataset": data, "options": {"split": "train"}}, ["target"])["target"] == 0


def test_the_run_flags_the_class_rows_in_results_csv(tmp_path):
    """benchmarks.run with a task.yaml whose training counts lack a class: that class's rows carry the flag."""
    from benchmarks.run import main

    rng = np.random.default_rng(0)
    root = tmp_path / "d"
    (root / "ir").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 64), dtype=np.uint8)).save(root / "ir" / f"f{i}.png")
        (root / "labels" / f"f{i}.txt").write_text(f"{i % 3} 0.5 0.5 0.3 0.4\n")
    spec = {"name": "mine", "kind": "folder", "root": str(root / "ir"), "labels_dir": str(root / "labels")}
    spec["classes"] = list(CLASSES)
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec))
    task = {
        "factory": "downstream.detection.task:DetectionTask",
        "options": {
            "weights": "detector.pt",
            "random_weights": True,
            "model": "yolov5n.yaml",
            "imgsz": 64,
            "classes": list(CLASSES),
            "train_counts": COUNTS,
        },
    }
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task))
    args = ["--datasets", str(root / "dataset.yaml"), "--tasks", str(tmp_path / "task.yaml"), "--methods", "hr"]
    assert main([*args, "--out", str(tmp_path / "o"), "--quiet", "--no-report", "--device", "cpu"]) == 0
    res = pd.read_csv(tmp_path / "o" / "results.csv")
    res = res[res["metric"] == "mAP50-95"]
    flagged = {row["class"]: FLAG_CLASS_ABSENT_IN_TRAINING in split_flags(row["flags"]) for _, row in res.iterrows()}
    assert flagged == {CLASS_ALL: False, "a": False, "b": False, ABSENT: True}


def test_the_per_class_table_marks_the_absent_class_column_not_the_methods():
    from reports.tables import per_class_table, table_notes, unmarked_class
    from sr.vocab import FLAG_MARKS, FLAG_NOTES, RESULT_COLUMNS

    rows = []
    for method in ("bicubic", "hr"):
        for cls, value in ((CLASS_ALL, 0.5), ("a", 0.6), ("b", 0.4), (ABSENT, 0.0)):
            flags = FLAG_CLASS_ABSENT_IN_TRAINING if cls == ABSENT else ""
            values = ("s", "mine", "bicubic", method, "detection", "mAP50-95", cls, value, 4, np.nan, np.nan, flags, "")
            rows.append(dict(zip(RESULT_COLUMNS, values, strict=True)))
    table = per_class_table(pd.DataFrame(rows), "detection", "mAP50-95")
    mark = FLAG_MARKS[FLAG_CLASS_ABSENT_IN_TRAINING]
    assert list(table.columns) == [("mine", CLASS_ALL), ("mine", "a"), ("mine", "b"), ("mine", f"{ABSENT} {mark}")]
    assert sorted(table.index) == ["bicubic", "hr"]  # the methods carry no mark: the class does
    assert unmarked_class(table.columns[-1][1]) == ABSENT and unmarked_class("a") == "a"
    assert any(FLAG_NOTES[FLAG_CLASS_ABSENT_IN_TRAINING] in note for note in table_notes(table))
