"""``sr.weights.resolve_weights``: one search order for every "registry name or file path" option, one error,
and the SR methods, the detection task and the segmentation task all find their files through it."""

from __future__ import annotations

import shutil

import pytest

import sr
from sr.config import PROJECT_ROOT
from sr.errors import MissingWeightsError, UserError
from sr.vocab import ENV_WEIGHTS_DIR
from sr.weights import path_of, resolve_weights

DEMO = PROJECT_ROOT / "sr" / "weights" / "demo"
ENTRY = "segformer_b1_fmb"  # a registry entry whose file lives in the weights directory


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A working directory and a weights directory (set through the environment), both empty."""
    cwd, wdir = tmp_path / "cwd", tmp_path / "weights"
    cwd.mkdir(), wdir.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(wdir))
    return cwd, wdir


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_an_existing_path_wins_over_a_registry_name(places):
    cwd, wdir = places
    _touch(path_of(ENTRY))  # the registry entry's file is there too
    assert resolve_weights(ENTRY) == path_of(ENTRY) == wdir / "segformer" / "segformer_b1_fmb.pth"
    _touch(cwd / ENTRY)
    assert resolve_weights(ENTRY) == cwd / ENTRY


def test_registry_names_use_the_argument_then_the_environment(places, tmp_path):
    _, wdir = places
    with pytest.raises(MissingWeightsError, match="segformer_b1_fmb.pth"):
        resolve_weights(ENTRY)
    _touch(wdir / "segformer" / "segformer_b1_fmb.pth")
    assert resolve_weights(ENTRY) == wdir / "segformer" / "segformer_b1_fmb.pth"
    other = _touch(tmp_path / "other" / "segformer" / "segformer_b1_fmb.pth")
    assert resolve_weights(ENTRY, tmp_path / "other") == other
    # committed demo entries are found in the repository whatever the weights directory
    assert resolve_weights("resshift_demo") == DEMO / "resshift_demo.safetensors"


def test_relative_paths_cwd_then_weights_dir_then_project_root(places, monkeypatch):
    cwd, wdir = places
    rel = "sr/weights/demo/yolo_demo_synthir.pt"
    assert resolve_weights(rel) == PROJECT_ROOT / rel
    in_wdir = _touch(wdir / rel)
    assert resolve_weights(rel) == in_wdir
    in_cwd = _touch(cwd / rel)
    assert resolve_weights(rel) == in_cwd
    monkeypatch.setenv("HOME", str(wdir))
    home = _touch(wdir / "home.pt")
    assert resolve_weights("~/home.pt") == home


def test_missing_file_is_one_error_naming_what_and_every_place(places, monkeypatch):
    cwd, wdir = places
    with pytest.raises(UserError) as info:
        resolve_weights("sub/nope.pth", what="detector weights")
    msg = str(info.value)
    assert msg.startswith("detector weights 'sub/nope.pth': no such file and not a name in configs/weights.yaml")
    for place in (cwd / "sub/nope.pth", wdir / "sub/nope.pth", PROJECT_ROOT / "sub/nope.pth"):
        assert str(place) in msg
    with pytest.raises(UserError) as info:
        resolve_weights(cwd / "abs.pth")
    assert f"(searched {cwd / 'abs.pth'})" in str(info.value)
    monkeypatch.chdir(PROJECT_ROOT)  # the working directory and the project folder: listed once
    with pytest.raises(UserError) as info:
        resolve_weights("nope.pth")
    assert str(info.value).count(str(PROJECT_ROOT / "nope.pth")) == 1


def test_sr_method_finds_its_weights_through_the_resolver(places):
    _, wdir = places
    shutil.copy(DEMO / "resshift_demo.safetensors", wdir / "mine.safetensors")
    method = sr.load_method("resshift_demo", weights={"unet": "mine.safetensors"})
    assert method.weight_files()["unet"] == wdir / "mine.safetensors"
    with pytest.raises(UserError, match=r"method 'resshift_demo': options.weights.unet 'gone.safetensors': no such"):
        sr.load_method("resshift_demo", weights={"unet": "gone.safetensors"})


def test_detection_task_finds_its_weights_through_the_resolver(places):
    from downstream.detection.task import DetectionTask
    from sr.weights import file_sha256

    _, wdir = places
    shutil.copy(DEMO / "yolo_demo_synthir.pt", wdir / "mine.pt")
    task = DetectionTask(weights="mine.pt", imgsz=320)
    assert task.identity()["weights"]["sha256"] == file_sha256(DEMO / "yolo_demo_synthir.pt")
    assert task.class_names  # load_detector found and read the same file
    with pytest.raises(UserError, match=r"detector weights 'gone.pt': no such file"):
        DetectionTask(weights="gone.pt")


def test_segmentation_task_finds_its_weights_through_the_resolver(places):
    from downstream.segmentation.task import SegmentationTask

    _, wdir = places
    shutil.copy(DEMO / "segformer_demo_synthir.pth", wdir / "mine.pth")
    task = SegmentationTask(weights="mine.pth", variant="mit_tiny", device="cpu")
    assert task.weights_path() == wdir / "mine.pth"
    with pytest.raises(UserError, match=r"segmentation weights 'gone.pth': no such file"):
        SegmentationTask(weights="gone.pth", variant="mit_tiny").identity()
