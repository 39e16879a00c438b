"""The main job on the embedded demo suite, checked against the committed baseline (what CI guards)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.regress import main as regress_main
from benchmarks.run import main as run_main
from downstream.datasets import load_dataset
from downstream.imageio import write_png
from downstream.tasks import TaskItem, load_task
from reports.tables import load_results
from sr.vocab import COL_CI_HIGH, COL_CI_LOW, FLAG_NIQE_FALLBACK_PARAMS, split_flags

BASELINE = Path(__file__).resolve().parents[1] / "benchmarks" / "demo_baseline.csv"


WEIGHT_FREE_METRICS = ("niqe", "piqe", "entropy", "sd", "ag", "sf", "ei")


def test_demo_results_do_not_regress_against_the_committed_baseline(demo_run):
    assert (demo_run / "report" / "report.md").is_file()
    assert regress_main(["--baseline", str(BASELINE), "--results", str(demo_run / "results.csv")]) == 0


def test_weight_free_quality_for_every_method_offline(demo_run):
    """NIQE (bundled parameters, flagged), PIQE, entropy, SD, AG, SF and EI for every method that ran; the
    metrics whose networks cannot be had offline stay missing-weights rows."""
    df = load_results(demo_run / "results.csv")
    ran = sorted(set(df.method) - set(df[df.metric == "unavailable"].method))
    assert {"hr", "bicubic", "lr", "lr_native"} <= set(ran)
    overall = df[(df.task == "quality") & (df["class"] == "all")].set_index(["method", "metric"])
    per_image = df[(df.task == "quality") & (df["class"] != "all")]
    for method in ran:
        for metric in WEIGHT_FREE_METRICS:
            if metric == "niqe" and method == "lr_native":  # 60 x 80 LR frames are smaller than one 96 x 96 block
                errors = per_image[(per_image.method == "lr_native") & (per_image.metric == "niqe")].error
                assert len(errors) > 0 and errors.str.contains("at least 96x96").all()
                continue
            row = overall.loc[(method, metric)]
            assert np.isfinite(row["value"]) and row["error"] == "" and row["n"] > 0, (method, metric)
            assert (FLAG_NIQE_FALLBACK_PARAMS in split_flags(row["flags"])) == (metric == "niqe"), (method, metric)
        for metric in ("lpips", "clipiqa", "musiq"):
            assert "not found" in overall.loc[(method, metric)]["error"], (method, metric)
    run = json.loads((demo_run / "run.json").read_text())
    assert run["metric_files"]["niqe"]["flags"] == [FLAG_NIQE_FALLBACK_PARAMS]
    assert run["metric_files"]["niqe"]["files"]["pretrained_model_path"]["bundled"] is True


def test_methods_that_cannot_run_offline_say_why(demo_run):
    df = pd.read_csv(demo_run / "results.csv", keep_default_na=False, na_values=[""])
    unavailable = df[df.metric == "unavailable"]
    assert len(unavailable) > 0 and unavailable.error.str.contains("not found|not set up").all()
    report = (demo_run / "report" / "report.md").read_text()
    for method in unavailable.method:
        assert method in report


@pytest.mark.parametrize(
    "task_name,config,metric",
    [("detection", "detection_demo", "mAP50-95"), ("segmentation", "segmentation_demo", "mIoU")],
)
def test_hr_row_is_the_hr_score_and_bicubic_is_lower(demo_run, tmp_path, task_name, config, metric):
    df = pd.read_csv(demo_run / "results.csv", keep_default_na=False, na_values=[""])
    rows = df[(df.task == task_name) & (df.metric == metric) & (df["class"] == "all")].set_index("method").value
    assert rows["hr"] > rows["bicubic"]
    dataset = load_dataset("synthir_demo")
    items = []
    for sample_id in dataset.ids():  # the HR frames themselves, scored directly by the task
        sample = dataset.load(sample_id)
        path = tmp_path / f"{sample_id}.png"
        write_png(path, sample.hr.permute(1, 2, 0).numpy())
        items.append(TaskItem(id=sample_id, image=path, labels={"boxes": sample.boxes, "mask": sample.mask}))
    task = load_task(config)
    direct = {
        (r.metric, r.cls): r.value for r in task.evaluate(items, task.dataset_classes(dataset), tmp_path / "work")
    }
    assert rows["hr"] == pytest.approx(direct[(metric, "all")], abs=1e-12)


def test_every_value_has_a_bootstrap_interval_and_hr_beats_bicubic_significantly(demo_run):
    df = load_results(demo_run / "results.csv")
    valued = df[df.value.notna() & (df.error == "") & df.task.isin(["quality", "detection", "segmentation"])]
    assert {"quality", "detection", "segmentation"} <= set(valued.task)
    assert valued[COL_CI_LOW].notna().all() and valued[COL_CI_HIGH].notna().all()
    assert (valued[COL_CI_LOW] <= valued[COL_CI_HIGH]).all()
    means = valued[valued.task == "quality"]
    assert ((means[COL_CI_LOW] <= means.value + 1e-9) & (means.value <= means[COL_CI_HIGH] + 1e-9)).all()
    sig = pd.read_csv(demo_run / "report" / "significance.csv", keep_default_na=False, na_values=[""])
    assert list(sig.columns[:13]) == [
        "dataset",
        "degradation",
        "method",
        "reference",
        "task",
        "metric",
        "class",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "significant",
    ]
    row = sig[(sig.method == "hr") & (sig.task == "quality") & (sig.metric == "psnr")].iloc[0]
    assert row.reference == "bicubic" and bool(row.significant) and row.ci_low > 0 and row.p_holm < 0.05
    assert "## Significance against `bicubic`" in (demo_run / "report" / "report.md").read_text()
    html = (demo_run / "report" / "paper" / "report.html").read_text()
    assert "Significance against <code>bicubic</code>" in html and "Results of this run" in html and " [" in html


def test_a_method_compared_with_itself_is_not_significant(demo_run):
    from reports.significance import compare, load_evidence

    samples = load_evidence(demo_run)
    for key in [("quality", "psnr", "all"), ("detection", "mAP50-95", "all"), ("segmentation", "mIoU", "all")]:
        result = compare(samples[("synthir_demo", "bicubic")], samples[("synthir_demo", "bicubic")], key, 0.0)
        assert result == {"delta": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}, key


def test_reports_regenerate_intervals_and_significance_without_models(demo_run, tmp_path, monkeypatch):
    """``python -m reports`` from results.csv plus the run's per-image samples, with models unbuildable (the paper
    report's qualitative figures, which do draw task predictions, are then skipped with a warning)."""
    import benchmarks.runner
    import downstream.tasks
    import sr.registry
    from reports.__main__ import main as reports_main

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built while regenerating the report")

    for module, name in [(sr.registry, "load_method"), (downstream.tasks, "load_task"), (benchmarks.runner, "run_job")]:
        monkeypatch.setattr(module, name, refuse)
    out = tmp_path / "report"
    assert reports_main(["--results", str(demo_run / "results.csv"), "--out", str(out), "--reference", "bicubik"]) == 2
    assert reports_main(["--results", str(demo_run / "results.csv"), "--out", str(out), "--reference", "hr"]) == 0
    sig = pd.read_csv(out / "significance.csv", keep_default_na=False, na_values=[""])
    assert set(sig.reference) == {"hr"} and "hr" not in set(sig.method)
    psnr = sig[(sig.method == "bicubic") & (sig.metric == "psnr")].iloc[0]
    assert psnr.delta < 0 and bool(psnr.significant)
    quality = (out / "report.md").read_text()
    assert " [" in quality and "radar_quality_synthir_demo.png" in {p.name for p in out.iterdir()}


def test_paper_tables_show_intervals_and_mark_only_significant_leaders(demo_run):
    from reports.paper_tables import build_all
    from reports.significance import compare, load_evidence

    df = load_results(demo_run / "results.csv")
    samples = load_evidence(demo_run)
    gated = next(t for t in build_all(df, {"Set5": "synthir_demo"}, samples=samples) if t.spec.key == "main_table2")
    by_rank = next(t for t in build_all(df, {"Set5": "synthir_demo"}) if t.spec.key == "main_table2")
    cells = gated.formatted("md")[("Set5/PSNR", "ours")]
    label = next(r for r in cells.index if gated.methods[r] == "difiisr_demo")
    row = df[(df.method == "difiisr_demo") & (df.metric == "psnr")].iloc[0]
    assert cells[label].endswith(f"[{row[COL_CI_LOW]:.3f}, {row[COL_CI_HIGH]:.3f}]")
    marks, rank_marks = gated.marks("ours"), by_rank.marks("ours")
    assert marks and set(marks.items()) <= set(rank_marks.items())
    for (label, column), mark in marks.items():  # each mark: significantly ahead of the next-ranked row
        col = next(c for c in gated.spec.columns if c.name == column)
        ours = (
            gated.values[(column, "ours")]
            .drop(labels=list(gated.reference_rows | gated.random_rows), errors="ignore")
            .dropna()
        )
        ours = ours.sort_values(ascending=not col.higher)
        nxt = ours.index[list(ours.index).index(label) + 1]
        p = compare(
            samples[("synthir_demo", gated.methods[label])],
            samples[("synthir_demo", gated.methods[nxt])],
            (col.task, col.metric, "all"),
            0.0,
        )["p_value"]
        assert p < 0.05, (label, column, mark)


def test_a_reference_outside_the_run_is_a_usage_error(tmp_path, capsys):
    assert run_main(["--methods", "bicubic,hr", "--reference", "lanczos", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "lanczos" in err and "Traceback" not in err
