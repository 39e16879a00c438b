"""A data set (or named subset) smaller than asked is warned about and flagged; SIRST yields segmentation rows."""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from downstream.datasets import load_dataset
from sr.vocab import FLAG_SUBSET_SMALLER


def test_folder_limit_larger_than_the_folder_is_flagged(tmp_path, caplog):
    for i in range(3):
        Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(tmp_path / f"{i}.png")
    assert load_dataset("folder:" + str(tmp_path)).flags == ()
    assert load_dataset("folder:" + str(tmp_path), limit=2).flags == ()
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("folder:" + str(tmp_path), limit=10)
    assert ds.flags == (FLAG_SUBSET_SMALLER,) and len(ds.ids()) == 3
    assert "3 frames, fewer than the 10 asked" in caplog.text
    ad_hoc = load_dataset(f"folder:{tmp_path}?limit=2&channels=1")  # options as a query
    assert len(ad_hoc.ids()) == 2 and ad_hoc.channels == 1 and ad_hoc.flags == ()


def test_m3fd_set5_from_a_small_test_split_is_flagged(shared_data, tmp_path, caplog):
    from downstream.detection.prepare import prepare_m3fd

    src = shared_data / "m3fd"
    prepare_m3fd(src, tmp_path / "m3fd", images=src / "ir", annotations=src / "labels_yolo")
    test_size = len((tmp_path / "m3fd" / "meta" / "test.txt").read_text().split())
    assert test_size < 5  # 12 frames: a 20 % test split of 3
    with caplog.at_level(logging.WARNING):
        set5 = load_dataset("m3fd_set5", root=str(tmp_path / "m3fd"))
    assert len(set5.ids()) == test_size and set5.flags == (FLAG_SUBSET_SMALLER,)
    assert f"{test_size} frames, fewer than the 5 asked" in caplog.text
    assert load_dataset("m3fd_train", root=str(tmp_path / "m3fd")).flags == ()


def test_sirst_suite_produces_small_target_segmentation_rows(shared_data, tmp_path, monkeypatch):
    import pandas as pd

    from benchmarks.run import main

    monkeypatch.setenv("IRSR_DATA_DIR", str(shared_data))
    monkeypatch.setenv("IRSR_CACHE_DIR", str(tmp_path / "cache"))
    assert (
        main(
            [
                "--suite",
                "sirst",
                "--methods",
                "bicubic",
                "--metrics",
                "psnr",
                "--limit",
                "2",
                "--random-weights",
                "--out",
                str(tmp_path / "run"),
                "--no-report",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    seg = rows[rows.task == "segmentation"]
    assert {"IoU", "mIoU", "nIoU", "Pd", "Fa"} <= set(seg.metric) and seg.error.isna().all()
    assert set(seg[seg.metric == "IoU"]["class"]) == {"background", "target"}
