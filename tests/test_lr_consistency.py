"""LR consistency: ``lr_psnr`` degrades the SR output with the data set's own operator and
compares it with the LR input; outputs unrelated to their input are flagged ``lr_inconsistent`` and never marked
best. Oracles: a hand-computed case, scikit-image's PSNR, and the operator that made the LR (``hr`` reproduces it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from downstream.lr_consistency import LR_PSNR_THRESHOLD, degradation_operator, flag_lr_inconsistent, lr_psnr
from downstream.metrics import QualityMetric
from sr.degrade import degrade, modcrop
from sr.methods.interpolation import pil_resize
from sr.vocab import FLAG_LR_INCONSISTENT, METRIC_LR_PSNR, RESULT_COLUMNS, split_flags


def _gray(path) -> torch.Tensor:
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return modcrop(torch.from_numpy(arr)[None], 4)


def test_hand_computed_constant_frames():
    """Bicubic of a constant frame is that constant: 128/255 against 102/255 is an MSE of (26/255)^2."""
    sr = torch.full((1, 1, 32, 40), 128 / 255)
    lr = torch.full((1, 1, 8, 10), 102 / 255)
    expected = 10 * np.log10(1 / (26 / 255) ** 2)
    got = float(lr_psnr(sr, lr, degradation_operator(4, "bicubic"))[0])
    assert got == pytest.approx(expected, abs=1e-4)


def test_matches_scikit_image_and_the_registered_metric(shared_data):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    hr = _gray(sorted((shared_data / "roadscene" / "ir").iterdir())[0])
    lr = degrade(hr, 4)
    up = pil_resize(lr[None], tuple(hr.shape[-2:]), "bicubic")
    expected = skimage_metrics.peak_signal_noise_ratio(
        lr.numpy().astype(np.float64), degrade(up[0], 4).numpy().astype(np.float64), data_range=1.0
    )
    operator = degradation_operator(4, "bicubic")
    assert float(lr_psnr(up, lr[None], operator)[0]) == pytest.approx(expected, abs=1e-3)
    metric = QualityMetric(METRIC_LR_PSNR)
    assert metric.spec.lr_input and not metric.spec.reference  # runs without HR
    assert float(metric(up, lr=lr[None], operator=operator)[0]) == pytest.approx(expected, abs=1e-3)
    with pytest.raises(ValueError, match="LR input"):
        metric(up)


def test_reference_bicubic_and_an_unrelated_frame_on_real_data(shared_data):
    """hr reproduces its LR exactly (100 dB, the MSE floor); bicubic is far above the threshold; a frame of another
    scene (what the demo SR models return on real frames) is far below it."""
    files = sorted((shared_data / "roadscene" / "ir").iterdir())
    hr, other = _gray(files[0]), _gray(files[1])
    other = other[..., : hr.shape[-2], : hr.shape[-1]]
    hr = hr[..., : other.shape[-2], : other.shape[-1]]
    lr = degrade(hr, 4)[None]
    operator = degradation_operator(4, "bicubic")
    up = pil_resize(lr, tuple(hr.shape[-2:]), "bicubic")
    assert float(lr_psnr(hr[None], lr, operator)[0]) == pytest.approx(100.0)
    assert float(lr_psnr(up, lr, operator)[0]) > LR_PSNR_THRESHOLD + 5
    assert float(lr_psnr(other[None], lr, operator)[0]) < LR_PSNR_THRESHOLD
    assert float(lr_psnr(torch.full_like(hr[None], 120 / 255), lr, operator)[0]) < LR_PSNR_THRESHOLD


def test_another_operator_can_be_passed():
    """A data set degraded otherwise (here 4x4 area averaging) passes its own operator: the output that operator
    maps onto the LR exactly scores the floor, and the bicubic operator does not."""
    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.random((1, 1, 32, 32), dtype=np.float32))
    area = lambda x: torch.nn.functional.avg_pool2d(x, 4)  # noqa: E731
    lr = area(hr)
    assert float(lr_psnr(hr, lr, area)[0]) == pytest.approx(100.0)
    assert float(lr_psnr(hr, lr, degradation_operator(4, "bicubic"))[0]) < 100.0


def test_rows_of_an_inconsistent_method_are_flagged_per_data_set():
    def row(dataset, method, metric, value, degradation="bicubic"):
        values = {"suite": "s", "dataset": dataset, "degradation": degradation, "method": method, "task": "quality"}
        values |= {"metric": metric, "class": "all", "value": value, "n": 4, "flags": "", "error": ""}
        return {c: values.get(c, np.nan) for c in RESULT_COLUMNS}

    rows = [
        row("a", "demo", METRIC_LR_PSNR, LR_PSNR_THRESHOLD - 10),
        row("a", "demo", "niqe", 3.0),
        row("a", "bicubic", METRIC_LR_PSNR, 40.0),
        row("b", "demo", METRIC_LR_PSNR, 40.0),
        row("a", "demo", METRIC_LR_PSNR, 40.0, degradation="noise@3"),
    ]
    flagged = pd.DataFrame(flag_lr_inconsistent(rows))
    assert [FLAG_LR_INCONSISTENT in split_flags(f) for f in flagged["flags"]] == [True, True, False, False, False]


def test_lr_psnr_runs_on_a_folder_of_real_lr_frames_without_hr(shared_data, tmp_path):
    """DifIISR's own M3FD LR files (no HR given): lr_psnr is computed for every frame, PSNR (needs HR) is not."""
    from benchmarks.run import main as run_main
    from reports.tables import load_results

    folder = shared_data / "m3fd" / "lr_x4_difiisr"
    argv = ["--datasets", f"folder:{folder}?lr_only=true&limit=3", "--methods", "bicubic", "--tasks", "quality"]
    out = tmp_path / "run"
    argv += ["--metrics", "lr_psnr,psnr", "--out", str(out), "--device", "cpu", "--quiet", "--no-report"]
    assert run_main(argv) == 0
    df = load_results(out / "results.csv")
    assert list(df["metric"]) == [METRIC_LR_PSNR] and int(df["n"].iloc[0]) == 3 and (df["error"] == "").all()
    assert float(df["value"].iloc[0]) > LR_PSNR_THRESHOLD
