"""Report clutter: one error row per (data set, metric) that cannot run, paper tables only for
the paper suites or when asked, class columns in the data set's order, no negative radial ticks on an all-zero
radar, no 'an older run?' warning on a quality-only run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from reports.build import build_reports
from reports.paper import build_paper_report
from reports.qualitative import qualitative_figures
from reports.radar import _radial_limits
from reports.tables import per_class_table, problems_table
from sr.vocab import COL_DEGRADATION, RESULT_COLUMNS

# rows without the degradation column: read as bicubic, like a results.csv of older runs
OLD_COLUMNS = [c for c in RESULT_COLUMNS if c != COL_DEGRADATION]

MISSING = "metric 'musiq': weights file pyiqa_musiq_koniq.pth is missing from /w (download: https://x)"
CLASSES = ["Person", "Car", "Bicycle", "OtherVehicle"]  # HIT-UAV's order, not alphabetical


def _results(path, suite="mine"):
    rows = []
    for method in ("bicubic", "hr", "nearest"):
        rows.append([suite, "ds", method, "quality", "psnr", "all", 30.0, 4, np.nan, np.nan, "", ""])
        rows.append([suite, "ds", method, "quality", "musiq", "all", np.nan, 0, np.nan, np.nan, "", MISSING])
        for i, cls in enumerate(["all", *CLASSES]):
            rows.append([suite, "ds", method, "detection", "mAP50-95", cls, 0.1 * i, 4, np.nan, np.nan, "", ""])
    pd.DataFrame(rows, columns=OLD_COLUMNS).to_csv(path, index=False)
    return path


def test_a_metric_that_cannot_run_is_one_row_naming_every_method(tmp_path):
    df = pd.read_csv(_results(tmp_path / "results.csv"), keep_default_na=False, na_values=[""])
    df["error"] = df["error"].fillna("")
    problems = problems_table(df)
    assert len(problems) == 1 and problems.iloc[0]["method"] == "bicubic, hr, nearest"
    assert problems.iloc[0]["metric"] == "musiq" and problems.iloc[0]["error"] == MISSING


def test_class_columns_keep_the_data_sets_order(tmp_path):
    df = pd.read_csv(_results(tmp_path / "results.csv"))
    table = per_class_table(df, "detection", "mAP50-95")
    assert [c for _, c in table.columns] == ["all", *CLASSES]


def test_paper_tables_only_for_a_paper_suite_or_when_asked(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    report = build_reports(_results(mine / "results.csv"), mine / "report")
    assert not list((report / "paper" / "tables").glob("*.md"))  # suite 'mine': no tables of dashes
    assert "Table 1." not in (report / "paper" / "report.html").read_text()
    asked = build_paper_report(mine / "results.csv", tmp_path / "asked")  # python -m reports.paper: asked for
    assert list((asked / "tables").glob("*.md"))
    paper = tmp_path / "paper"
    paper.mkdir()
    report = build_reports(_results(paper / "results.csv", suite="paper"), paper / "report")
    assert list((report / "paper" / "tables").glob("*.md"))


def test_an_all_zero_radar_starts_at_zero():
    zeros = pd.DataFrame({"car": [0.0, 0.0], "person": [0.0, 0.0]}, index=["bicubic", "hr"])
    assert _radial_limits(zeros, None) == (0.0, 1.0)
    values = pd.DataFrame({"car": [0.2, 0.4], "person": [0.1, 0.0]}, index=["bicubic", "hr"])
    bottom, top = _radial_limits(values, values + 0.1)
    assert bottom == 0.0 and top >= 0.5


def test_no_older_run_warning_on_a_quality_only_run(tmp_path):
    run = tmp_path / "run"
    (run / "sr_outputs").mkdir(parents=True)
    (run / "cache").mkdir()
    from PIL import Image

    lines = ["dataset,method,id,path"]
    for method in ("bicubic", "hr"):
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(run / "cache" / f"{method}.png")
        lines.append(f"ds,{method},f0,cache/{method}.png")
        (run / "sr_outputs" / f"ds__{method}.csv").write_text("\n".join([lines[0], lines[-1]]) + "\n")
    (run / "run.json").write_text(json.dumps({"suite": "mine", "tasks": {}, "seed": 0}))
    df = pd.read_csv(_results(run / "results.csv"))
    df = df[df.task == "quality"]
    _, skipped = qualitative_figures(run, df, tmp_path / "figures")
    assert not any("older run" in reason for reason in skipped)
