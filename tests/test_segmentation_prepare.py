"""FMB preparation (both download layouts, id / colour labels) and the mask-overlay figure."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from downstream.errors import DataError
from downstream.segmentation.figure import comparison_grid, overlay
from downstream.segmentation.prepare import label_to_ids, main, prepare_fmb

PALETTE = {(0, 0, 0): 0, (128, 64, 128): 1, (220, 20, 60): 8}


def _frame(rng, h=12, w=16):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _ids(rng, h=12, w=16):
    return rng.choice([0, 1, 8], size=(h, w)).astype(np.uint8)


def _split_download(root, rng, colour=False, same_names=False):
    truth = {}
    for split, names in (("train", ["00001", "00002"]), ("test", ["00001" if same_names else "00003"])):
        for sub in ("Infrared", "Label", "Visible"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.fromarray(_frame(rng)).save(root / split / "Infrared" / f"{name}.png")
            Image.fromarray(_frame(rng)).save(root / split / "Visible" / f"{name}.png")
            ids = _ids(rng)
            truth[(split, name)] = ids
            if colour:
                inv = {v: k for k, v in PALETTE.items()}
                Image.fromarray(np.array([inv[i] for i in ids.ravel()], np.uint8).reshape(*ids.shape, 3)).save(
                    root / split / "Label" / f"{name}.png"
                )
            else:
                Image.fromarray(ids, mode="L").save(root / split / "Label" / f"{name}.png")
    return truth


def test_prepare_split_layout_gray_ids_reads_back_through_fmb_kind(tmp_path):
    rng = np.random.default_rng(0)
    truth = _split_download(tmp_path / "dl", rng)
    counts = prepare_fmb(tmp_path / "dl", tmp_path / "fmb")
    assert counts == {"train": 2, "test": 1}
    assert (tmp_path / "fmb" / "train.txt").read_text().split() == ["00001.png", "00002.png"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "fmb" / "Label" / "00003.png")), truth[("test", "00003")]
    )
    from downstream.datasets import load_dataset

    ds = load_dataset("fmb_test", root=str(tmp_path / "fmb"), scale=4)
    assert ds.ids() == ["00003"]
    sample = ds.load("00003")
    expected = np.where(truth[("test", "00003")] == 0, 255, truth[("test", "00003")])
    np.testing.assert_array_equal(sample.mask, expected)  # unlabeled -> ignore by default
    (tmp_path / "fmb").rename(tmp_path / "moved")  # its dataset.yaml names the folder it is in
    assert load_dataset(str(tmp_path / "moved" / "dataset.yaml"), split="test").ids() == ["00003"]


def test_prepare_colour_labels_need_a_palette_and_prefix_clashing_names(tmp_path):
    rng = np.random.default_rng(1)
    truth = _split_download(tmp_path / "dl", rng, colour=True, same_names=True)
    with pytest.raises(DataError, match="--palette"):
        prepare_fmb(tmp_path / "dl", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before writing
    prepare_fmb(tmp_path / "dl", tmp_path / "out", palette=PALETTE)
    assert (tmp_path / "out" / "test.txt").read_text().split() == ["test_00001.png"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "out" / "Label" / "train_00002.png")), truth[("train", "00002")]
    )


def test_prepare_flat_layout_cli_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(2)
    src = tmp_path / "flat"
    (src / "Infrared").mkdir(parents=True)
    (src / "Label").mkdir()
    for name in ("a", "b"):
        Image.fromarray(_frame(rng)).save(src / "Infrared" / f"{name}.png")
        Image.fromarray(_ids(rng)).save(src / "Label" / f"{name}.png")
    (src / "train.txt").write_text("a.png\n")
    (src / "test.txt").write_text("b.png\n")
    assert main(["fmb", "--src", str(src), "--out", str(tmp_path / "o"), "--link"]) == 0
    assert (tmp_path / "o" / "Infrared" / "a.png").stat().st_ino == (src / "Infrared" / "a.png").stat().st_ino
    Image.fromarray(np.full((12, 16), 20, np.uint8)).save(src / "Label" / "b.png")
    assert main(["fmb", "--src", str(src), "--out", str(tmp_path / "o2")]) == 2
    assert "outside 0..14" in capsys.readouterr().err
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(src / "Label" / "b.png")
    with pytest.raises(DataError, match="label is 5x5"):
        prepare_fmb(src, tmp_path / "o3")
    with pytest.raises(DataError, match="not an FMB download"):
        prepare_fmb(tmp_path / "o", tmp_path / "o4", images="Nope")


def test_label_modes(tmp_path):
    ids = np.array([[0, 3], [14, 7]], np.uint8)
    p = Image.fromarray(ids, mode="P")
    p.putpalette([v for i in range(256) for v in (i * 7 % 256, 0, 0)])
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(label_to_ids(tmp_path / "p.png"), ids)  # palette indices are the ids
    Image.fromarray(np.repeat(ids[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(label_to_ids(tmp_path / "rgb.png"), ids)  # gray stored as RGB


def test_overlay_and_grid():
    image = np.full((8, 10), 0.5, np.float32)
    ids = np.zeros((8, 10), np.uint8)
    ids[2:4, 2:6] = 8
    ids[0, 0] = 255
    out = overlay(image, ids)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (128, 128, 128) and tuple(out[5, 5]) == (128, 128, 128)  # ignore / skipped 0
    assert tuple(out[3, 3]) == (174, 74, 94)  # person colour blend
    from downstream.datasets.fmb import FMB_CLASSES

    grid = comparison_grid([("HR", image, ids), ("bicubic", image, ids)], FMB_CLASSES, box=(1, 1, 6, 5), zoom=3)
    assert grid.mode == "RGB" and grid.width > 2 * 18 and grid.height > 15


def test_figure_from_files_with_a_task(tmp_path):
    from downstream.segmentation.figure import figure_from_files
    from downstream.segmentation.task import SegmentationTask

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 48), dtype=np.uint8)).save(tmp_path / "a.png")
    task = SegmentationTask(variant="mit_tiny", random_weights=True, device="cpu")
    fig = figure_from_files(
        task,
        {"HR": tmp_path / "a.png", "copy": tmp_path / "a.png"},
        ("bg", "x", "y"),
        gt=np.zeros((32, 48), np.uint8),
        out=tmp_path / "fig.png",
    )
    assert (tmp_path / "fig.png").is_file() and fig.width > 2 * 96
