"""Every scored image is on one grid, and a frame without its LR file still scores where no LR is read.

SR outputs are stored as 8-bit PNG; a 16-bit (or float) reference is put on the same grid before a metric
compares them, so the ``hr`` row scores as identical to its reference on 16-bit PNG and TIFF frames (without
it: PSNR ~60 dB, SSIM 0.999 on 16-bit copies of HIT-UAV frames). A data set that pairs official LR files
(M3FD's ``<id>x4.png``) may lack one: ``hr`` scores that frame, methods that read LR get an error row naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from PIL import Image

from benchmarks.run import main as run_main
from downstream.imageio import on_png_grid, read_image, write_png
from downstream.metrics import QualityMetric
from reports.tables import load_results


def _sixteen_bit(frames8: list[np.ndarray], folder: Path, suffix: str) -> Path:
    """16-bit copies of 8-bit frames with random low bytes (so the values are off the 8-bit grid)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, frame in enumerate(frames8):
        raw = frame.astype(np.uint16) * 256 + rng.integers(0, 256, frame.shape, dtype=np.uint16)
        Image.fromarray(raw).save(folder / f"f{i}{suffix}")
        assert Image.open(folder / f"f{i}{suffix}").mode.startswith("I")  # stored as 16-bit
    return folder


def _run(tmp_path: Path, yaml_text: str, methods: str) -> object:
    cfg = tmp_path / "frames16.yaml"
    cfg.write_text(yaml_text)
    out = tmp_path / "run"
    assert (
        run_main(
            [
                "--datasets",
                str(cfg),
                "--methods",
                methods,
                "--tasks",
                "quality",
                "--metrics",
                "psnr,ssim",
                "--out",
                str(out),
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    return load_results(out / "results.csv")


def _identical_scores() -> dict[str, float]:
    """What PSNR / SSIM give for an image compared with itself (pyiqa's own numbers)."""
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    return {m: float(QualityMetric(m)(x, x)[0]) for m in ("psnr", "ssim")}


def _synthetic_frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (96, 128)).astype(np.float64)
    return [np.clip(base + rng.normal(0, 20, base.shape) + 30 * i, 0, 255).astype(np.uint8) for i in range(3)]


def _hit_uav_frames() -> list[np.ndarray]:
    images = shared_path("data", "hit_uav", "images", what="HIT-UAV samples")
    return [np.asarray(Image.open(p).convert("L")) for p in sorted(images.glob("*.jpg"))[:3]]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("source", ["synthetic", "hit_uav"])
def test_hr_scores_identical_to_its_16_bit_reference(tmp_path, suffix, source):
    frames = _synthetic_frames() if source == "synthetic" else _hit_uav_frames()
    folder = _sixteen_bit(frames, tmp_path / "frames", suffix)
    df = _run(tmp_path, f"kind: folder\nroot: {folder}\nhigh_bit_rule: full\n", "hr,bicubic")
    assert (df.error == "").all(), df[df.error != ""]
    scores = df[df["class"] == "all"].set_index(["method", "metric"]).value
    for metric, identical in _identical_scores().items():
        assert scores[("hr", metric)] == pytest.approx(identical, abs=1e-9), metric
        assert scores[("bicubic", metric)] < identical  # a real method still scores below identical


def test_png_grid_is_exactly_what_an_output_reads_back_as(tmp_path):
    arr = np.random.default_rng(3).random((17, 23, 1), dtype=np.float32)
    write_png(tmp_path / "x.png", arr)
    back = read_image(tmp_path / "x.png", channels=1)
    assert np.array_equal(on_png_grid(arr), back) and not np.array_equal(arr, back)
    assert np.array_equal(on_png_grid(back), back)  # 8-bit data stays as it is


def test_frame_without_its_lr_file_scores_hr_and_names_the_file_for_other_methods(tmp_path):
    rng = np.random.default_rng(5)
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    for sample_id in ("a", "b", "c"):
        frame = rng.integers(0, 256, (64, 80), dtype=np.uint8)
        Image.fromarray(frame).save(hr_dir / f"{sample_id}.png")
        if sample_id != "b":  # frame b has no official LR (as M3FD 00512)
            Image.fromarray(frame).resize((20, 16), Image.BICUBIC).save(lr_dir / f"{sample_id}x4.png")
    df = _run(tmp_path, f"kind: folder\nroot: {hr_dir}\nlr_dir: {lr_dir}\nlr_template: '{{id}}x4.png'\n", "hr,bicubic")
    hr = df[df.method == "hr"]
    assert (hr.error == "").all() and set(hr[hr["class"] == "all"].n) == {3}
    bicubic = df[df.method == "bicubic"]
    error = bicubic[bicubic["class"] == "b"]
    assert len(error) == 1 and str(lr_dir / "bx4.png") in error.error.iloc[0] and "not found" in error.error.iloc[0]
    assert set(bicubic[(bicubic["class"] == "all") & (bicubic.error == "")].n) == {2}


def test_m3fd_00512_without_official_lr_scores_hr(tmp_path):
    """The real case: M3FD 00512 has no file in the official DifIISR LR folder."""
    m3fd = shared_path("data", "m3fd", what="M3FD samples")
    assert not (m3fd / "lr_x4_difiisr" / "00512x4.png").exists()
    (tmp_path / "ids.txt").write_text("00512\n00950\n")
    df = _run(
        tmp_path,
        f"kind: folder\nroot: {m3fd / 'ir'}\nlr_dir: {m3fd / 'lr_x4_difiisr'}\n"
        f"lr_template: '{{id}}x4.png'\nlist_file: {tmp_path / 'ids.txt'}\n",
        "hr,bicubic",
    )
    hr = df[(df.method == "hr") & (df["class"] == "all")].set_index("metric")
    assert (hr.error == "").all() and set(hr.n) == {2}
    assert hr.value["psnr"] == pytest.approx(_identical_scores()["psnr"])
    error = df[(df.method == "bicubic") & (df["class"] == "00512")].error
    assert len(error) == 1 and "00512x4.png: file not found" in error.iloc[0]
