"""Data sets, image reading and the paper's degradation."""

import numpy as np
import pytest
import torch
from PIL import Image

from downstream.datasets import load_dataset
from downstream.datasets.splits import deterministic_splits
from downstream.errors import ImageReadError
from downstream.imageio import read_image
from sr.degrade import degrade, modcrop


def test_bicubic_degradation_reproduces_the_official_difiisr_lr_files(shared_data):
    m3fd = shared_data / "m3fd"
    lr_files = sorted((m3fd / "lr_x4_difiisr").glob("*x4.png"))
    assert len(lr_files) == 10
    for lr_file in lr_files:
        hr = torch.from_numpy(read_image(m3fd / "ir" / f"{lr_file.stem[:-2]}.png")).permute(2, 0, 1)
        ours = degrade(modcrop(hr, 4), 4)
        official = torch.from_numpy(read_image(lr_file)).permute(2, 0, 1)
        assert torch.equal(torch.round(ours * 255), torch.round(official * 255)), lr_file.name


def test_m3fd_real_samples_load_with_boxes(shared_data):
    ds = load_dataset("m3fd_test", root=str(shared_data / "m3fd"), labels="labels_yolo", split="all")
    assert len(ds.ids()) == 12
    sample = ds.load("00950")
    assert sample.hr.shape == (1, 768, 1024) and sample.lr.shape == (1, 192, 256)
    assert sample.boxes.shape[1] == 5 and len(sample.boxes) > 0
    assert set(np.unique(sample.boxes[:, 0])) <= set(range(6))


def test_folder_with_official_lr_pairs(shared_data):
    m3fd = shared_data / "m3fd"
    ds = load_dataset("folder:" + str(m3fd / "ir"), lr_dir=str(m3fd / "lr_x4_difiisr"), lr_template="{id}x4.png")
    sample = ds.load("01828")
    assert sample.hr.shape == (1, 320, 440) and sample.lr.shape == (1, 80, 110)


def test_splits_are_deterministic_nested_and_disjoint():
    ids = [f"{i:05d}" for i in range(4200)]
    a, b = deterministic_splits(ids), deterministic_splits(list(reversed(ids)))
    assert a == b
    assert not set(a["train"]) & set(a["test"]) and not set(a["val"]) & set(a["test"])
    assert len(a["train"]) + len(a["val"]) + len(a["test"]) == 4200
    assert set(a["set5"]) <= set(a["set15"]) <= set(a["set20"]) <= set(a["test"])


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "F"])
def test_read_image_modes(tmp_path, mode):
    rng = np.random.default_rng(1)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(1000, 5000, size=(10, 12), dtype=np.uint16))
    elif mode == "F":
        img = Image.fromarray(rng.random((10, 12), dtype=np.float32), mode="F")
    else:
        img = Image.fromarray(rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("I;16", "F") else "x.png")
    img.save(path)
    arr = read_image(path)
    assert arr.dtype == np.float32 and arr.shape[:2] == (10, 12) and arr.shape[2] in (1, 3)
    assert arr.min() >= 0 and arr.max() <= 1


def test_sixteen_bit_rules(tmp_path):
    raw = np.linspace(1000, 3000, 200, dtype=np.uint16).reshape(10, 20)
    path = tmp_path / "t.png"
    Image.fromarray(raw).save(path)
    full = read_image(path, high_bit_rule="full")
    assert np.allclose(full[..., 0], raw / 65535.0, atol=1e-6)
    fixed = read_image(path, high_bit_rule=(1000, 3000))
    assert np.allclose(fixed[..., 0], (raw - 1000) / 2000.0, atol=1e-6)
    agc = read_image(path)
    assert agc.min() == 0.0 and agc.max() == 1.0


@pytest.mark.parametrize(
    "content,match", [(b"", "empty file"), (b"not an image at all", "not an image"), (None, "cannot decode")]
)
def test_bad_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.png"
    if content is None:  # a truncated PNG
        Image.fromarray(np.zeros((64, 64), np.uint8) + 7).save(path)
        path.write_bytes(path.read_bytes()[:60])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_a_folder_without_frames_is_an_error_naming_the_subfolder_that_has_them(tmp_path):
    from downstream.errors import DataError

    (tmp_path / "ir").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ir" / "a.png")
    (tmp_path / "README.txt").write_text("not a frame")
    with pytest.raises(DataError, match=r"no image files .* in .*; frames are in its sub-folder\(s\) ir"):
        load_dataset(f"folder:{tmp_path}")
