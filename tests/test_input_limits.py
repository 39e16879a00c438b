"""Frames that would cost too much or are ambiguous are refused with one clear message: a decompression bomb is
caught from its header before decoding, two files sharing a frame id are an error row, tiny frames say their
real size."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.run import main as run_main
from downstream.errors import DataError, ImageReadError
from downstream.imageio import read_image
from sr.vocab import ENV_MAX_PIXELS

QUICK = [
    "--methods",
    "bicubic",
    "--tasks",
    "quality",
    "--metrics",
    "psnr,ssim",
    "--quiet",
    "--no-report",
    "--device",
    "cpu",
]


def _frame(path, size=(32, 24), value=128):
    Image.fromarray(np.full(size[::-1], value, np.uint8), mode="L").save(path)


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9400, 9400)).save(bomb)  # ~100 KB on disk, 88 million pixels decoded
    assert bomb.stat().st_size < 200_000
    start = time.process_time()
    with pytest.raises(ImageReadError, match=r"9400x9400 is 88.4 million pixels, over the limit of 25 million"):
        read_image(bomb)
    assert time.process_time() - start < 5  # not decoded (a functional bound, not a speed claim)
    monkeypatch.setenv(ENV_MAX_PIXELS, "100")
    with pytest.raises(ImageReadError, match=ENV_MAX_PIXELS):
        read_image(tmp_path / _small(tmp_path))
    monkeypatch.setenv(ENV_MAX_PIXELS, "1e9")
    assert read_image(tmp_path / _small(tmp_path)).shape == (24, 32, 1)


def _small(tmp_path):
    _frame(tmp_path / "small.png")
    return "small.png"


def test_bomb_duplicate_ids_and_tiny_frames_in_a_run_are_error_rows(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    _frame(frames / "good.png")
    _frame(frames / "dup.png")
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(frames / "dup.jpg")
    Image.new("1", (9400, 9400)).save(frames / "bomb.png")
    _frame(frames / "tiny.png", size=(1, 1))
    _frame(frames / "small.png", size=(3, 3))
    out = tmp_path / "run"
    assert run_main(["--datasets", f"folder:{frames}", "--out", str(out), *QUICK]) == 0
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    errors = df[df.metric == "error"].set_index("class").error
    assert set(errors.index) == {"dup", "bomb", "tiny", "small"}
    assert "dup.jpg and dup.png share the frame id 'dup'" in errors["dup"]
    assert "million pixels" in errors["bomb"]
    assert "frame 1x1 is smaller than the scale 4" in errors["tiny"]
    assert "frame 3x3 is smaller than the scale 4" in errors["small"]
    psnr = df[(df.metric == "psnr") & (df["class"] == "all")]
    assert psnr.n.iloc[0] == 1 and np.isfinite(psnr.value.iloc[0])  # the good frame is scored


def test_duplicate_ids_are_not_dropped_silently(tmp_path):
    from downstream.datasets import load_dataset

    _frame(tmp_path / "dup.png")
    _frame(tmp_path / "dup.tif")
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.ids() == ["dup"]
    with pytest.raises(DataError, match="dup.png and dup.tif share"):
        dataset.load("dup")
