"""Progress on every long step: prepare counts frames, segmentation training shows iterations
with their rate and ETA, detection training passes ultralytics' own per-epoch output through."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import mask_source
from PIL import Image

from downstream.detection.prepare import main as det_prepare
from downstream.segmentation.prepare import prepare_masks


def _yolo_set(root, n=6):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("car\n")
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(root / "images" / f"f{i}.png")
        (root / "labels" / f"f{i}.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    return root


def test_prepare_counts_frames_on_a_terminal(tmp_path, capsys, monkeypatch):
    src = _yolo_set(tmp_path / "src")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # tqdm shows its count on a terminal, as the runner's
    assert det_prepare(["yolo", "--src", str(src), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "prepare yolo" in err and "6/6" in err and "read yolo labels" in err


@pytest.mark.slow  # about 60 s on a shared 2-core CPU (mmseg import and a SegFormer build)
def test_segmentation_training_shows_iterations_with_eta(tmp_path, capsys):
    from downstream.segmentation.train import main

    mask_source(tmp_path / "src")
    prepare_masks(tmp_path / "src", tmp_path / "data")
    argv = ["--dataset", str(tmp_path / "data" / "dataset.yaml"), "--out", str(tmp_path / "run"), "--model", "mit_b0"]
    assert main([*argv, "--iters", "3", "--crop", "32", "--batch", "2", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "segmentation.train" in err and "3/3" in err and "<" in err  # done/total [elapsed<ETA]
    assert "it/s" in err or "s/it" in err


@pytest.mark.slow  # an ultralytics training epoch on CPU
def test_detection_training_passes_ultralytics_epoch_output_through(shared_data, tmp_path, capfd):
    from downstream.detection.prepare import main as prepare
    from downstream.detection.train import main as train

    assert prepare(["voc", "--src", str(shared_data / "hit_uav"), "--out", str(tmp_path / "hit")]) == 0
    argv = ["--dataset", str(tmp_path / "hit" / "dataset.yaml"), "--out", str(tmp_path / "run"), "--model", "yolov5n"]
    assert train([*argv, "--epochs", "2", "--imgsz", "64", "--batch", "4", "--limit", "8", "--device", "cpu"]) == 0
    out = "".join(capfd.readouterr())
    assert "1/2" in out and "2/2" in out  # ultralytics' epoch counter
    assert "mAP50" in out  # its per-epoch validation line
