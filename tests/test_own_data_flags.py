"""A warning wherever a number is void: a task that hits nothing on every method is
flagged ``void_task`` on every row; outputs inconsistent with their LR input are flagged ``lr_inconsistent`` and
never marked best, even where they lead a no-reference column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.run import main as run_main
from downstream.task_flags import flag_void_tasks
from reports.build import build_reports
from reports.tables import load_results
from sr.vocab import (
    FLAG_LR_INCONSISTENT,
    FLAG_MARKS,
    FLAG_NOTES,
    FLAG_SCRATCH_INIT,
    FLAG_VOID_TASK,
    RESULT_COLUMNS,
    split_flags,
)


def _row(dataset, method, task, metric, cls, value, flags=""):
    values = ("s", dataset, "bicubic", method, task, metric, cls, value, 5, np.nan, np.nan, flags, "")
    return dict(zip(RESULT_COLUMNS, values, strict=True))


def _void_table() -> pd.DataFrame:
    rows = []
    for method in ("bicubic", "hr", "difiisr"):
        rows += [
            _row("mine", method, "quality", "psnr", "all", 30.0),
            _row("mine", method, "detection", "mAP50", "all", 0.0, FLAG_SCRATCH_INIT),
            _row("mine", method, "detection", "mAP50-95", "all", 0.0, FLAG_SCRATCH_INIT),
            _row("mine", method, "detection", "mAP50", "car", 0.0, FLAG_SCRATCH_INIT),
            # another data set where the detector finds something on one method: not void
            _row("other", method, "detection", "mAP50", "all", 0.2 if method == "hr" else 0.0),
        ]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def test_a_task_scoring_zero_on_every_method_is_void_on_every_row():
    out = flag_void_tasks(_void_table())
    flagged = [FLAG_VOID_TASK in split_flags(f) for f in out["flags"]]
    expected = [(d == "mine" and t == "detection") for d, t in zip(out["dataset"], out["task"])]
    assert flagged == expected and sum(flagged) == 9
    kept = out[(out["dataset"] == "mine") & (out["task"] == "detection")]["flags"]
    assert all(FLAG_SCRATCH_INIT in split_flags(f) for f in kept)  # other flags stay
    # recomputed on the whole table: once hr finds something, a stale flag from an earlier write goes
    again = out.copy()
    again.loc[(again["dataset"] == "mine") & (again["method"] == "hr") & (again["metric"] == "mAP50"), "value"] = 0.1
    assert not any(FLAG_VOID_TASK in split_flags(f) for f in flag_void_tasks(again)["flags"])


def test_void_rows_carry_the_mark_and_the_footnote_in_the_report(tmp_path):
    csv = tmp_path / "results.csv"
    flag_void_tasks(_void_table()).to_csv(csv, index=False)
    report = build_reports(csv, tmp_path / "report")
    text = (report / "report.md").read_text() if report.is_dir() else report.read_text()
    assert FLAG_MARKS[FLAG_VOID_TASK] in text and FLAG_NOTES[FLAG_VOID_TASK] in text


@pytest.mark.slow  # about 20 s on a shared 2-core CPU: a real benchmark run and its report
def test_lr_inconsistent_outputs_are_flagged_and_never_bold(tmp_path):
    """The demo DifIISR network on the synthetic demo set: its outputs lead AG and EI (sharper than bicubic or
    nearest) but degrade back to its LR at under 30 dB, against over 40 dB for interpolation."""
    out = tmp_path / "run"
    argv = ["--datasets", "synthir_demo", "--methods", "bicubic,nearest,difiisr_demo", "--metrics", "lr_psnr,ag,ei"]
    assert run_main([*argv, "--tasks", "quality", "--limit", "8", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    df = load_results(out / "results.csv")
    lr = df[df["metric"] == "lr_psnr"].set_index("method")["value"]
    assert lr["difiisr_demo"] < 30 < 40 < min(lr["bicubic"], lr["nearest"])
    demo = df[df["method"] == "difiisr_demo"]
    assert all(FLAG_LR_INCONSISTENT in split_flags(f) for f in demo["flags"])
    ei = df[df["metric"] == "ei"].set_index("method")["value"]
    assert ei.idxmax() == "difiisr_demo"  # it would lead the column
    table = next(line for line in (out / "report" / "report.md").read_text().splitlines() if "difiisr_demo" in line)
    assert FLAG_MARKS[FLAG_LR_INCONSISTENT] in table and "**" not in table
    assert "**" in (out / "report" / "report.md").read_text()  # another method is marked best instead


@pytest.fixture(autouse=True)
def _offline_reports(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


def test_paper_tables_never_mark_an_lr_inconsistent_row_best():
    """As the run's tables: the method leading a paper column with outputs unrelated to its LR input is not bold;
    the next one is, and the mark and note of the flag are shown."""
    from reports.paper_tables import TABLES, build_table

    rows = []
    for method, clipiqa, flags in (("difiisr", 0.9, FLAG_LR_INCONSISTENT), ("sinsr", 0.5, ""), ("resshift", 0.4, "")):
        rows += [
            _row("mine", method, "quality", "clipiqa", "all", clipiqa, flags),
            _row("mine", method, "quality", "musiq", "all", 30.0 + clipiqa, flags),
        ]
    df = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    df["error"] = ""
    table = build_table(TABLES[0], df, {"Set5": "mine"})
    label = {m: label for label, m in table.methods.items()}
    marks = table.marks("ours")
    for column in ("Set5/CLIP-IQA", "Set5/MUSIQ"):
        assert (label["difiisr"], column) not in marks
        assert marks[(label["sinsr"], column)] == "best" and marks[(label["resshift"], column)] == "second"
    assert FLAG_MARKS[FLAG_LR_INCONSISTENT] in label["difiisr"]
    assert marks.get((label["difiisr"], "Set5/CLIP-IQA")) is None and table.marks("paper")  # the paper's own marks stay
