"""The regression check against a baseline results table."""

import pandas as pd

from benchmarks.regress import compare, load_tolerances, main

COLUMNS = ["suite", "dataset", "method", "task", "metric", "class", "value", "n", "flags", "error"]


def _table(rows):
    return pd.DataFrame([["demo", "d", *r, 1, "", ""] for r in rows], columns=COLUMNS)


def test_drops_beyond_tolerance_fail_and_direction_is_respected(tmp_path):
    tol, lower = load_tolerances()
    base = _table(
        [
            ["bicubic", "quality", "psnr", "all", 30.0],
            ["bicubic", "quality", "niqe", "all", 5.0],
            ["bicubic", "detection", "mAP50-95", "Car", 0.5],
        ]
    )
    same = compare(base, base, tol, lower)
    assert (same.status == "ok").all()
    worse = _table(
        [
            ["bicubic", "quality", "psnr", "all", 29.0],
            ["bicubic", "quality", "niqe", "all", 4.0],
            ["bicubic", "detection", "mAP50-95", "Car", 0.5 - tol["mAP50-95"] / 2],
        ]
    )
    status = compare(base, worse, tol, lower).set_index("metric").status
    assert status["psnr"] == "REGRESSION" and status["niqe"] == "better" and status["mAP50-95"] == "ok"
    missing = compare(base, base.iloc[:1], tol, lower)
    assert (missing.status == "REGRESSION (missing)").sum() == 2
    base.to_csv(tmp_path / "b.csv", index=False)
    worse.to_csv(tmp_path / "w.csv", index=False)
    assert main(["--baseline", str(tmp_path / "b.csv"), "--results", str(tmp_path / "b.csv")]) == 0
    assert main(["--baseline", str(tmp_path / "b.csv"), "--results", str(tmp_path / "w.csv")]) == 1
