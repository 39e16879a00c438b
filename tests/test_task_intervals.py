"""Task intervals from cached per-image evidence: a task's replicates on resampled image lists equal recomputing
the metric from scratch on those lists, by an evaluator outside our aggregation (pycocotools, mmseg)."""

import numpy as np
import pytest
from coco_oracle import coco_score

from downstream.bootstrap import percentile_interval, resample_indices
from downstream.detection.task import DetectionTask
from downstream.sample import IGNORE_INDEX
from downstream.segmentation.metrics import mmseg_iou_metric
from downstream.segmentation.task import SegmentationTask

CLASSES = ("People", "Car", "Bus")


def _detections(n_images=9, seed=0):
    """Per image: ground truth (cls, x1, y1, x2, y2) and noisy detections (x1, y1, x2, y2, conf, cls), boxes of
    several COCO sizes so that APs / APm / APl rows exist."""
    rng = np.random.default_rng(seed)
    images = {}
    for i in range(n_images):
        n = int(rng.integers(1, 5))
        xy = rng.uniform(0, 400, (n, 2))
        g = np.c_[rng.integers(0, 3, n), xy, xy + rng.choice([12.0, 60.0, 140.0], (n, 1)) + rng.uniform(0, 8, (n, 2))]
        p = []
        for box in g:
            if rng.random() < 0.8:
                p.append([*(box[1:] + rng.normal(0, 4, 4)), rng.random(), box[0] if rng.random() < 0.9 else 2])
        for _ in range(int(rng.integers(0, 3))):  # false positives
            x, y = rng.uniform(0, 400, 2)
            p.append([x, y, x + 30, y + 30, rng.random(), rng.integers(0, 3)])
        p = np.array(p, dtype=np.float64).reshape(-1, 6)
        p[:, 2:4] = np.maximum(p[:, 2:4], p[:, :2] + 1)
        images[f"frame{i:02d}"] = {"pred": p.tolist(), "gt": g.tolist()}
    return {"classes": list(CLASSES), "ap_method": "coco", "images": images}


def test_detection_replicates_equal_pycocotools_on_the_same_resampled_lists():
    state = _detections()
    ids = np.array(list(state["images"]))
    draws = ids[resample_indices(len(ids), 40, seed=5)]
    reps = DetectionTask.replicates(state, draws)
    direct = {key: np.full(len(draws), np.nan) for key in reps}
    for r, draw in enumerate(draws):  # recompute from scratch: pycocotools on the drawn list (repeats = new images)
        preds = [np.asarray(state["images"][i]["pred"]) for i in draw]
        gts = [np.asarray(state["images"][i]["gt"]) for i in draw]
        ref = coco_score(preds, gts, CLASSES)
        direct[("mAP50-95", "all")][r], direct[("mAP50", "all")][r] = ref.map50_95, ref.map50
        for name, cs in ref.per_class.items():
            direct[("mAP50-95", name)][r], direct[("mAP50", name)][r] = cs.map50_95, cs.map50
        for size, metric in (("small", "APs"), ("medium", "APm"), ("large", "APl")):
            if (metric, "all") in direct and size in ref.sizes:
                direct[(metric, "all")][r] = ref.sizes[size]
    assert {("mAP50-95", "all"), ("APs", "all"), ("APm", "all"), ("APl", "all"), ("mAP50", "Car")} <= set(reps)
    for key, values in reps.items():
        np.testing.assert_allclose(values, direct[key], atol=1e-9, equal_nan=True, err_msg=str(key))
        assert percentile_interval(values) == pytest.approx(percentile_interval(direct[key]), abs=1e-9)
    # the identity draw gives the task's own value
    whole = DetectionTask.replicates(state, ids[None])
    full = coco_score(
        [np.asarray(v["pred"]) for v in state["images"].values()],
        [np.asarray(v["gt"]) for v in state["images"].values()],
        CLASSES,
    )
    assert whole[("mAP50-95", "all")][0] == pytest.approx(full.map50_95, abs=1e-9)


def test_segmentation_replicates_equal_mmseg_on_the_same_resampled_lists():
    rng = np.random.default_rng(1)
    k = 4
    names = tuple(f"c{i}" for i in range(k))
    frames, images = {}, {}
    for i in range(7):
        lab = rng.integers(0, k, size=(12, 16))
        lab[rng.random(lab.shape) < 0.1] = IGNORE_INDEX
        pred = np.where(rng.random(lab.shape) < 0.7, lab, rng.integers(0, k, size=lab.shape))
        pred[pred == IGNORE_INDEX] = 0
        frames[f"f{i}"] = (pred.astype(np.uint8), lab.astype(np.uint8))
    from downstream.segmentation.metrics import confusion_matrix

    for image_id, (pred, lab) in frames.items():
        images[image_id] = {"confusion": confusion_matrix(pred, lab, k).tolist()}
    state = {"classes": list(names), "ignored": [], "images": images}
    ids = np.array(list(frames))
    draws = ids[resample_indices(len(ids), 25, seed=2)]
    reps = SegmentationTask.replicates(state, draws)
    for r, draw in enumerate(draws):
        _, per_class = mmseg_iou_metric([frames[i][0] for i in draw], [frames[i][1] for i in draw], names)
        for c, name in enumerate(names):
            assert reps[("IoU", name)][r] == pytest.approx(per_class["IoU"][c], abs=1e-6)
        assert reps[("mIoU", "all")][r] == pytest.approx(np.nanmean(per_class["IoU"]), abs=1e-6)
        assert reps[("aAcc", "all")][r] == pytest.approx(per_class["aAcc"], abs=1e-6)


def test_small_target_replicates_equal_accumulating_the_drawn_frames():
    """Binary target masks: IoU / nIoU / Pd / Fa of a draw equal one accumulator fed the drawn frames in order."""
    from downstream.segmentation.metrics import ConfusionAccumulator, SmallTargetAccumulator, confusion_matrix
    from downstream.segmentation.task import rows_from_scores

    rng = np.random.default_rng(3)
    names = ("background", "target")
    frames, images = {}, {}
    for i in range(6):
        lab = np.zeros((24, 24), np.uint8)
        pred = np.zeros((24, 24), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            y, x = rng.integers(2, 20, 2)
            lab[y : y + 3, x : x + 3] = 1
            if rng.random() < 0.7:
                pred[y + 1 : y + 4, x : x + 3] = 1
        if rng.random() < 0.5:
            pred[0:2, 20:23] = 1  # a false alarm
        frames[f"t{i}"] = (pred, lab)
        one = SmallTargetAccumulator(target=1)
        one.update(pred, lab)
        images[f"t{i}"] = {"confusion": confusion_matrix(pred, lab, 2).tolist(), "small_target": one.state()}
    state = {"classes": list(names), "ignored": [], "images": images}
    ids = np.array(list(frames))
    draws = ids[resample_indices(len(ids), 15, seed=4)]
    reps = SegmentationTask.replicates(state, draws)
    assert {("nIoU", "all"), ("Pd", "all"), ("Fa", "all"), ("IoU", "target")} <= set(reps)
    for r, draw in enumerate(draws):
        acc, small = ConfusionAccumulator(2), SmallTargetAccumulator(target=1)
        for i in draw:
            acc.update(*frames[i])
            small.update(*frames[i])
        for row in rows_from_scores(acc, names, (), small):
            assert reps[(row.metric, row.cls)][r] == pytest.approx(row.value, abs=1e-12), (row.metric, row.cls)


# --------------------------------------------------- the vectorised replicates equal the per-list recomputation

from bootstrap_oracle import detection_replicates, segmentation_replicates  # noqa: E402


def _assert_same_replicates(new: dict, old: dict) -> None:
    assert list(new) and set(new) == set(old)
    for key in old:
        np.testing.assert_allclose(new[key], old[key], rtol=0, atol=1e-12, equal_nan=True, err_msg=str(key))
        assert np.array_equal(np.isnan(new[key]), np.isnan(old[key])), key
        assert percentile_interval(new[key]) == pytest.approx(percentile_interval(old[key]), abs=1e-12)


def _tied(state: dict) -> dict:
    """The same detections with confidences rounded to 0.1: many ties, some between a true and a false positive
    (where the curve depends on the order of the drawn images)."""
    images = {}
    for image_id, v in state["images"].items():
        pred = np.asarray(v["pred"]).reshape(-1, 6).copy()
        pred[:, 4] = np.round(pred[:, 4], 1)
        images[image_id] = {"pred": pred.tolist(), "gt": v["gt"]}
    return {**state, "images": images}


@pytest.mark.parametrize("variant", ["distinct", "tied", "ultralytics", "left_out"])
def test_detection_replicates_from_image_weights_equal_recomputing_each_list(variant, monkeypatch):
    import downstream.detection.metrics as metrics

    seen = []
    check = metrics._order_dependent_ties
    monkeypatch.setattr(metrics, "_order_dependent_ties", lambda *a: seen.append(check(*a)) or seen[-1])
    state = _detections(n_images=11, seed=3)
    if variant == "tied":
        state = _tied(state)
    if variant == "ultralytics":
        state["ap_method"] = "ultralytics"
    ids = np.array(list(state["images"]))
    draws = ids[resample_indices(len(ids), 60, seed=9)]
    if variant == "left_out":  # ids the state lacks are left out of their draw
        draws[::3, 0] = "not_in_state"
    _assert_same_replicates(DetectionTask.replicates(state, draws), detection_replicates(state, draws))
    assert any(seen) == (variant == "tied") and not all(seen)  # the order-dependent path ran where ties ask for it


def test_detection_with_no_detection_or_no_ground_truth_in_a_draw():
    state = _detections(n_images=6, seed=4)
    first = next(iter(state["images"]))
    state["images"][first] = {"pred": [], "gt": state["images"][first]["gt"]}  # ground truth, nothing detected
    state["images"]["empty"] = {"pred": [[1.0, 1.0, 30.0, 30.0, 0.9, 0.0]], "gt": []}  # a false positive only
    ids = np.array(list(state["images"]))
    draws = np.array([[first] * 4, ["empty"] * 4, [first, "empty", first, "empty"], list(ids[:4])])
    new, old = DetectionTask.replicates(state, draws), detection_replicates(state, draws)
    _assert_same_replicates(new, old)
    assert new[("mAP50-95", "all")][1] == 0.0  # no ground truth drawn: COCO's 0, as the task reports it


@pytest.mark.parametrize("ignored", [(), (0,)])
def test_segmentation_replicates_from_image_weights_equal_recomputing_each_list(ignored):
    rng = np.random.default_rng(6)
    k = 5
    images = {}
    for i in range(9):
        matrix = rng.integers(0, 50, (k, k))
        matrix[3] = 0  # class 3 never labelled; predicted in some images only
        if i % 2:
            matrix[:, 3] = 0
        images[f"i{i}"] = {"confusion": matrix.tolist()}
    state = {"classes": [f"c{c}" for c in range(k)], "ignored": list(ignored), "images": images}
    ids = np.array(list(images))
    draws = ids[resample_indices(len(ids), 80, seed=1)]
    draws[::4, 1] = "not_in_state"
    _assert_same_replicates(SegmentationTask.replicates(state, draws), segmentation_replicates(state, draws))


def test_demo_replicates_and_intervals_equal_the_per_list_recomputation(demo_run):
    """On the README main job's own cached task states and drawn lists: the replicates the run stored (vectorised)
    equal recomputing each drawn list from scratch (the previous implementation), and so do the intervals in
    results.csv (to 1e-9)."""

    import pandas as pd

    from benchmarks.cache import RunCache
    from downstream.evidence import evidence_path, read_evidence

    evidence = read_evidence(evidence_path(demo_run, "synthir_demo", "bicubic"))
    draws = np.asarray(evidence.ids, dtype=str)[evidence.index_lists()]
    checked = {}
    for entry in sorted((demo_run / "cache" / "task").rglob("*.json.gz")):
        if entry.name.endswith(".replicates.json.gz"):
            continue
        state = RunCache.read_json(entry)["state"]  # through the entry's digest check
        kind = "detection" if "pred" in next(iter(state["images"].values())) else "segmentation"
        if kind in checked or list(state["images"]) != evidence.ids:
            continue
        task, oracle = {
            "detection": (DetectionTask, detection_replicates),
            "segmentation": (SegmentationTask, segmentation_replicates),
        }[kind]
        old = oracle(state, draws)
        stored = next(entry.parent.glob(entry.name.replace(".json.gz", "__*.replicates.json.gz")))
        saved = {(m, c): np.asarray(v, np.float64) for m, c, v in RunCache.read_json(stored)}
        for new in (task.replicates(state, draws), saved):
            assert set(new) == set(old)
            for key in old:
                np.testing.assert_allclose(new[key], old[key], rtol=0, atol=1e-9, equal_nan=True, err_msg=str(key))
        checked[kind] = (old, task.replicates(state, np.asarray(evidence.ids, dtype=str)[None]))
    assert set(checked) == {"detection", "segmentation"}
    # the intervals in results.csv of the method whose rows these states are (found by its value on all images)
    df = pd.read_csv(demo_run / "results.csv", keep_default_na=False, na_values=[""])
    for kind, (old, whole) in checked.items():
        metric = "mAP50-95" if kind == "detection" else "mIoU"
        overall = df[(df.task == kind) & (df.metric == metric) & (df["class"] == "all")]
        methods = overall[np.isclose(overall.value, whole[(metric, "all")][0], rtol=0, atol=1e-12)].method
        assert len(methods) >= 1
        rows = df[(df.task == kind) & df.method.isin(methods) & df.ci_low.notna()]
        assert len(rows) >= 3
        for method, m, cls, low, high in zip(rows.method, rows.metric, rows["class"], rows.ci_low, rows.ci_high):
            assert (low, high) == pytest.approx(percentile_interval(old[(m, cls)]), abs=1e-9), (method, m, cls)
