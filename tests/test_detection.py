"""Detection task: offline ultralytics, mAP against pycocotools and ultralytics' validator, weights safety,
the HR-vs-bicubic ordering on synthir with the committed demo detector, and the end-to-end fine-tune path."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEMO_WEIGHTS = REPO / "sr" / "weights" / "demo" / "yolo_demo_synthir.pt"
M3FD = ("People", "Car", "Bus", "Motorcycle", "Lamp", "Truck")


@pytest.fixture(scope="module", autouse=True)
def _offline(tmp_path_factory):
    """ultralytics with a private config dir under tmp (first import in this process wins)."""
    os.environ.setdefault("IRSR_CACHE_DIR", str(tmp_path_factory.mktemp("irsr_cache")))
    from downstream.detection.offline import ultralytics_offline

    ultralytics_offline()


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection or DNS lookup fails the test; ultralytics' download guards must stay untouched."""
    from downstream.detection import offline

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    before = len(offline.ATTEMPTS)
    yield
    assert offline.ATTEMPTS[before:] == [], f"ultralytics tried to download: {offline.ATTEMPTS[before:]}"


def _frames(seeds, out: Path):
    """synthir frames as HR PNGs plus their bicubic x4 round trip (the bicubic SR method on the bicubic LR)."""
    import sr
    from downstream.datasets.synthir import render_scene
    from downstream.imageio import write_png
    from downstream.tasks import TaskItem
    from sr.degrade import degrade

    bicubic = sr.load_method("bicubic")
    hr_items, bic_items = [], []
    for seed in seeds:
        scene = render_scene(seed)
        hr = torch.from_numpy(scene.image.astype(np.float32) / 255.0)[None]
        (out / "hr").mkdir(parents=True, exist_ok=True)
        (out / "bicubic").mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(out / "hr" / f"{seed}.png")
        with torch.inference_mode():
            up = bicubic.upscale(degrade(hr, 4, "bicubic")[None])[0]
        write_png(out / "bicubic" / f"{seed}.png", up.permute(1, 2, 0).numpy())
        hr_items.append(TaskItem(str(seed), out / "hr" / f"{seed}.png", {"boxes": scene.boxes}))
        bic_items.append(TaskItem(str(seed), out / "bicubic" / f"{seed}.png", {"boxes": scene.boxes}))
    return hr_items, bic_items


# ------------------------------------------------------------------------------------------------- offline


def test_offline_environment_has_font_and_refuses_downloads(no_network):
    import ultralytics.utils as uutils
    from ultralytics.utils.checks import check_font
    from ultralytics.utils.downloads import attempt_download_asset, is_url

    from downstream.detection import offline

    assert os.environ["YOLO_OFFLINE"] == "1" and uutils.ONLINE is False
    font = Path(check_font("Arial.ttf"))
    assert font.is_file() and font.parent == Path(uutils.USER_CONFIG_DIR)
    assert Path(check_font("Arial.Unicode.ttf")).is_file()
    with pytest.raises(offline.DownloadAttempted):
        attempt_download_asset("yolo26n.pt")
    offline.ATTEMPTS.clear()  # the refusal above was provoked on purpose
    assert is_url("https://example.com/x.pt") and not is_url("https://example.com/x.pt", check=True)
    offline.ATTEMPTS.clear()


# ------------------------------------------------------------------------------------------------- metrics


def _gt_cases():
    gts = [
        np.array([[0, 10, 10, 50, 80], [1, 100, 100, 200, 160], [4, 250, 5, 262, 30]], float),
        np.array([[1, 20, 20, 90, 70], [2, 150, 30, 300, 200]], float),
        np.array([[5, 40, 60, 200, 190], [0, 210, 100, 230, 150], [3, 5, 100, 40, 170]], float),
        np.zeros((0, 5)),
    ]
    return gts


def _as_preds(gts, conf=None):
    return [
        np.c_[g[:, 1:], np.linspace(0.9, 0.5, len(g)) if conf is None else conf, g[:, 0]]
        if len(g)
        else np.zeros((0, 6))
        for g in gts
    ]


def test_ground_truth_as_predictions_scores_one_per_class():
    from coco_oracle import coco_score

    from downstream.detection.metrics import score

    gts = _gt_cases()
    scores = score(_as_preds(gts), gts, M3FD)
    assert scores.map50_95 == pytest.approx(1.0, abs=1e-12) and scores.map50 == pytest.approx(1.0, abs=1e-12)
    assert set(scores.per_class) == set(M3FD)
    for name, cs in scores.per_class.items():
        assert cs.map50_95 == pytest.approx(1.0, abs=1e-12), name
        assert cs.map50 == pytest.approx(1.0, abs=1e-12), name
    assert coco_score(_as_preds(gts), gts, M3FD).map50_95 == pytest.approx(1.0, abs=1e-12)
    # ultralytics' own AP integration (trapezoid rule on the envelope) caps a perfect detector at 0.995
    assert score(_as_preds(gts), gts, M3FD, "ultralytics").map50_95 == pytest.approx(0.995, abs=1e-9)


def _assert_same(a, b):
    assert a.map50_95 == pytest.approx(b.map50_95, abs=1e-9)
    assert a.map50 == pytest.approx(b.map50, abs=1e-9)
    assert set(a.per_class) == set(b.per_class)
    for name in a.per_class:
        assert a.per_class[name].map50_95 == pytest.approx(b.per_class[name].map50_95, abs=1e-9), name
        assert a.per_class[name].map50 == pytest.approx(b.per_class[name].map50, abs=1e-9), name


@pytest.mark.parametrize("case", ["shifted", "missing", "extra_and_wrong_class", "scaled"])
def test_hand_made_predictions_give_pycocotools_value(case):
    from coco_oracle import coco_score

    from downstream.detection.metrics import score

    gts = _gt_cases()
    preds = _as_preds(gts)
    if case == "shifted":  # IoU of a 40x70 box shifted by 6 px: some thresholds pass, some fail
        preds[0][0, :4] += 6
        preds[2][0, [0, 2]] += 25
    elif case == "missing":
        preds[1] = preds[1][:1]
        preds[2] = preds[2][1:]
    elif case == "extra_and_wrong_class":
        preds[0] = np.r_[preds[0], [[300, 200, 320, 240, 0.99, 1]]]  # confident false positive
        preds[2][1, 5] = 1  # right box, wrong class
        preds[3] = np.array([[10, 10, 40, 40, 0.7, 0]])  # detection on an empty image
    elif case == "scaled":
        for p in preds:
            if len(p):
                c = (p[:, :2] + p[:, 2:4]) / 2
                half = (p[:, 2:4] - p[:, :2]) / 2 * 1.2
                p[:, :2], p[:, 2:4] = c - half, c + half
    ours, ref = score(preds, gts, M3FD), coco_score(preds, gts, M3FD)
    _assert_same(ours, ref)
    assert 0.0 < ours.map50_95 < 1.0


def test_random_predictions_match_pycocotools():
    from coco_oracle import coco_score

    from downstream.detection.metrics import score

    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(25):
        n = int(rng.integers(0, 8))
        xy = rng.uniform(0, 300, (n, 2))
        g = np.c_[rng.integers(0, 6, n), xy, xy + rng.uniform(5, 80, (n, 2))]
        m = int(rng.integers(0, 12))
        p = np.zeros((m, 6))
        for j in range(m):
            if n and rng.random() < 0.8:
                k = int(rng.integers(0, n))
                p[j, :4] = g[k, 1:] + rng.normal(0, 5, 4)
                p[j, 5] = g[k, 0] if rng.random() < 0.85 else rng.integers(0, 6)
            else:
                p[j, :2] = rng.uniform(0, 300, 2)
                p[j, 2:4] = p[j, :2] + rng.uniform(5, 60, 2)
                p[j, 5] = rng.integers(0, 6)
            p[j, 4] = rng.random()
        p[:, 2:4] = np.maximum(p[:, 2:4], p[:, :2] + 1)
        gts.append(g)
        preds.append(p)
    _assert_same(score(preds, gts, M3FD), coco_score(preds, gts, M3FD, max_dets=1000))


def test_yolo_label_round_trip():
    from downstream.detection.data import yolo_lines
    from downstream.labels import read_yolo_txt

    boxes = np.array([[0, 1.5, 2.25, 30.0, 40.75], [5, 100, 7, 319.0, 239.0]], np.float32)
    path = Path(os.environ["IRSR_DATA_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    (path / "x.txt").write_text(yolo_lines(boxes, 320, 240))
    np.testing.assert_allclose(read_yolo_txt(path / "x.txt", 320, 240, 6), boxes, atol=1e-4)


# ------------------------------------------------------------------------------------------------- weights


def test_plain_weights_round_trip_with_weights_only(tmp_path):
    from downstream.detection.yolo import build_model, load_weights, save_weights

    torch.manual_seed(0)
    model = build_model("yolov5n.yaml", nc=6, names=M3FD).eval()
    path = save_weights(model, tmp_path / "w.pt", imgsz=320, meta={"note": "test"}, half=False)
    payload = torch.load(path, weights_only=True)  # plain data only
    assert payload["format"] == "irsr-yolo" and payload["names"] == list(M3FD)
    loaded, header = load_weights(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model(x)[0])
    assert header["meta"] == {"note": "test"} and header["imgsz"] == 320


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_ultralytics_checkpoint_loads_with_allowlist_and_refuses_other_globals(tmp_path):
    from downstream.detection.yolo import (
        build_model,
        load_detector,
        load_ultralytics_checkpoint,
    )
    from sr.errors import UserError

    torch.manual_seed(0)
    coco = build_model("yolov5n.yaml", nc=80).eval()
    path = tmp_path / "yolov5nu.pt"
    torch.save(
        {
            "date": "2024-01-01",
            "version": "8.1.0",
            "model": coco.half(),
            "ema": None,
            "optimizer": None,
            "train_args": {"imgsz": 640},
            "epoch": -1,
        },
        path,
    )
    loaded = load_ultralytics_checkpoint(path)
    assert len(loaded.names) == 80
    _, _, header = load_detector(path)
    assert header["format"] == "ultralytics"
    evil = tmp_path / "evil.pt"
    torch.save({"model": coco, "x": _Evil()}, evil)
    with pytest.raises(UserError, match="refusing to unpickle"):
        load_ultralytics_checkpoint(evil)


# ------------------------------------------------------------------------------------------------- task


def test_task_options_identity_and_config(tmp_path):
    from downstream.detection.task import DetectionTask
    from downstream.tasks import load_task
    from sr.errors import ConfigError

    with pytest.raises(ConfigError):
        DetectionTask()
    with pytest.raises(ConfigError):
        DetectionTask(random_weights=True, ap_method="voc")
    task = DetectionTask(random_weights=True, model="yolov5n.yaml", classes=list(M3FD), imgsz=320)
    ident = task.identity()
    assert ident["imgsz"] == 320 and ident["conf"] == 0.001 and ident["iou"] == 0.7 and ident["weights"]["random"]
    assert task.flags == ("random_weights",)
    if DEMO_WEIGHTS.is_file():
        demo = load_task("detection_demo", device="cpu", weights_dir=None, random_weights=False)
        assert len(demo.identity()["weights"]["sha256"]) == 64 and demo.identity()["imgsz"] == 320
        assert demo.class_names == list(M3FD)


def test_lr_size_image_is_rejected(tmp_path):
    from downstream.detection.task import DetectionTask
    from downstream.errors import DataError
    from downstream.tasks import TaskItem

    Image.fromarray(np.zeros((60, 80), np.uint8)).save(tmp_path / "lr.png")
    item = TaskItem("a", tmp_path / "lr.png", {"boxes": np.array([[1, 100, 100, 300, 220]], np.float32)})
    task = DetectionTask(random_weights=True, model="yolov5n.yaml", classes=list(M3FD), imgsz=320)
    with pytest.raises(DataError, match="HR"):
        task.evaluate([item], M3FD, tmp_path / "work")


needs_demo = pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason=f"demo detector not trained ({DEMO_WEIGHTS})")


@needs_demo
def test_harness_equals_ultralytics_validator_and_pycocotools(tmp_path, no_network):
    from coco_oracle import coco_score
    from ultralytics.models.yolo.detect import DetectionValidator

    from downstream.detection.task import DetectionTask

    hr_items, _ = _frames(range(100000, 100008), tmp_path / "frames")
    task = DetectionTask(weights=str(DEMO_WEIGHTS), imgsz=320, ap_method="ultralytics", batch=4)
    ours, _, captured = task.predict_and_score(hr_items, M3FD, tmp_path / "work")
    # ultralytics' own, unmodified validator on the same folder
    validator = DetectionValidator(
        args={
            "data": str(tmp_path / "work" / "data" / "data.yaml"),
            "imgsz": 320,
            "conf": 0.001,
            "iou": 0.7,
            "batch": 4,
            "device": "cpu",
            "plots": False,
            "split": "test",
            "rect": True,
            "workers": 0,
            "verbose": False,
            "project": str(tmp_path / "v"),
            "name": "val",
        }
    )
    validator(model=task._load())
    ref = validator.metrics.box
    assert ours.map50_95 == pytest.approx(ref.map, abs=1e-9) and ours.map50 == pytest.approx(ref.map50, abs=1e-9)
    for i, c in enumerate(ref.ap_class_index):
        assert ours.per_class[M3FD[c]].map50_95 == pytest.approx(ref.maps[c], abs=1e-9)
        assert ours.per_class[M3FD[c]].map50 == pytest.approx(ref.ap50[i], abs=1e-9)
    assert ours.map50 > 0.05  # a trained detector, not noise
    # ultralytics' AP applied to the same predictions in SR-image pixels: the same up to matching in letterboxed vs
    # pixel coordinates (boxes clipped to the image, per-axis letterbox rounding)
    from downstream.detection.metrics import score

    again = score([c.pred for c in captured], [c.gt for c in captured], M3FD, "ultralytics")
    assert again.map50_95 == pytest.approx(ref.map, abs=0.01)
    # the default (coco) numbers are pycocotools' on the same predictions
    coco_task = DetectionTask(weights=str(DEMO_WEIGHTS), imgsz=320, batch=4)
    rows = coco_task.evaluate(hr_items, M3FD, tmp_path / "work2")
    ref_coco = coco_score([c.pred for c in captured], [c.gt for c in captured], M3FD, max_dets=300)
    by_key = {(r.metric, r.cls): r.value for r in rows}
    assert by_key[("mAP50-95", "all")] == pytest.approx(ref_coco.map50_95, abs=1e-9)
    for name, cs in ref_coco.per_class.items():
        assert by_key[("mAP50-95", name)] == pytest.approx(cs.map50_95, abs=1e-9)
        assert by_key[("mAP50", name)] == pytest.approx(cs.map50, abs=1e-9)
    # per-size rows are pycocotools' APs / APm / APl (COCO's 100 detections per image)
    from downstream.detection.task import SIZE_METRICS

    sizes = coco_score([c.pred for c in captured], [c.gt for c in captured], M3FD, max_dets=100).sizes
    assert sizes and {k for k in by_key if k[0] in SIZE_METRICS.values()} == {(SIZE_METRICS[s], "all") for s in sizes}
    for size, value in sizes.items():
        assert by_key[(SIZE_METRICS[size], "all")] == pytest.approx(value, abs=1e-9)


@needs_demo
def test_detection_leaves_the_process_thread_count_alone(tmp_path):
    """ultralytics sets torch's thread count for the whole process when it picks a device; the task puts it back,
    so metrics computed after a detection job use the same threads as before it."""
    from downstream.detection.offline import ultralytics_offline
    from downstream.detection.task import DetectionTask

    ultralytics_offline()
    from ultralytics.utils import NUM_THREADS

    items, _ = _frames([100000], tmp_path / "frames")
    before = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS + 1)  # a count ultralytics' own choice differs from
    try:
        DetectionTask(weights=str(DEMO_WEIGHTS), imgsz=320, batch=1).evaluate(items, M3FD, tmp_path / "w")
        assert torch.get_num_threads() == NUM_THREADS + 1
    finally:
        torch.set_num_threads(before)


@needs_demo
def test_hr_scores_above_bicubic_on_synthir(tmp_path):
    from downstream.detection.task import DetectionTask

    hr_items, bic_items = _frames(range(100000, 100012), tmp_path / "frames")  # the synthir_demo frames
    task = DetectionTask(weights=str(DEMO_WEIGHTS), imgsz=320, batch=6)
    hr = {(r.metric, r.cls): r.value for r in task.evaluate(hr_items, M3FD, tmp_path / "w_hr")}
    copy = task._evaluated[1]  # the copy handed to ultralytics' validator
    again = {(r.metric, r.cls): r.value for r in task.evaluate(hr_items, M3FD, tmp_path / "w_hr2")}
    bic = {(r.metric, r.cls): r.value for r in task.evaluate(bic_items, M3FD, tmp_path / "w_bic")}
    assert hr == again  # the hr reference row is exactly reproducible, on the kept copy too
    # one copy for every evaluation of the task, apart from the loaded model the figures draw with
    assert task._evaluated[1] is copy and copy is not task._load()
    assert hr[("mAP50-95", "all")] > bic[("mAP50-95", "all")]


def test_finetune_from_coco_style_checkpoint_and_evaluate_offline(tmp_path, no_network, monkeypatch):
    """The whole path without network: COCO-style .pt init -> train (1 epoch) -> plain weights -> task rows.
    Nothing on the way unpickles without restriction (ultralytics' own end-of-training evaluation would)."""
    from downstream.detection import train as train_mod
    from downstream.detection.task import DetectionTask
    from downstream.detection.yolo import build_model, load_weights

    torch.manual_seed(0)
    weights_dir = tmp_path / "weights"
    (weights_dir / "yolo").mkdir(parents=True)
    coco = build_model("yolov5n.yaml", nc=80).eval()
    torch.save({"model": coco.half(), "ema": None, "train_args": {}, "date": "x"}, weights_dir / "yolo" / "coco.pt")
    cfg = {
        "model": "yolov5n.yaml",
        "init": str(weights_dir / "yolo" / "coco.pt"),
        "classes": list(M3FD),
        "data": {
            "train": {"synthir": {"first_seed": 0, "count": 6, "height": 96, "width": 128}},
            "val": {"synthir": {"first_seed": 50000, "count": 2, "height": 96, "width": 128}},
        },
        "train": {
            "epochs": 1,
            "batch": 4,
            "imgsz": 128,
            "workers": 0,
            "mosaic": 0.0,
            "warmup_epochs": 0,
            "amp": False,
            "seed": 0,
            "verbose": False,
        },
    }
    real_load, unrestricted = torch.load, []

    def recording_load(f, *args, **kwargs):
        if not kwargs.get("weights_only", True):
            unrestricted.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    out = train_mod.run(
        cfg, "tiny", work=tmp_path / "work", out=tmp_path / "tiny.pt", device="cpu", weights_dir=str(weights_dir)
    )
    assert unrestricted == []
    model, header = load_weights(out)
    assert header["meta"]["init"]["init"].endswith("coco.pt") and header["names"] == list(M3FD)
    # the training split's boxes per class are in the meta (train --dataset writes them to task.yaml: train_counts)
    from downstream.datasets.synthir import render_scene

    boxes = np.concatenate([render_scene(seed, 96, 128).boxes for seed in range(6)])
    expected = {name: int((boxes[:, 0] == c).sum()) for c, name in enumerate(M3FD)}
    assert train_mod.trained_boxes_per_class(out) == expected and sum(expected.values()) > 0
    # the backbone came from the init checkpoint (the 80-class head did not fit and was trained from scratch)
    first = "model.0.conv.weight"
    trained, start = model.state_dict()[first], coco.state_dict()[first].float()
    fresh = build_model("yolov5n.yaml", nc=6).state_dict()[first]
    assert (trained - start).abs().mean() < 0.1 * (trained - fresh).abs().mean()
    hr_items, _ = _frames([100000, 100001], tmp_path / "frames")
    rows = DetectionTask(weights=str(out), imgsz=320, batch=2).evaluate(hr_items, M3FD, tmp_path / "eval")
    assert {(r.metric, r.cls) for r in rows} >= {("mAP50-95", "all"), ("mAP50", "all")}
    assert all(0.0 <= r.value <= 1.0 for r in rows)
