"""The main job on the embedded demo suite, checked against the committed baseline (what CI guards)."""
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.regress import main as regress_main
from benchmarks.run import main as run_main
from downstream.datasets import load_dataset
from downstream.imageio import write_png
from downstream.tasks import TaskItem, load_task

BASELINE = Path(__file__).resolve().parents[1] / "benchmarks" / "demo" / "baseline.csv"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert run_main(["--methods", "all", "--out", str(out), "--quiet"]) == 0
    return out


def test_demo_results_do_not_regress_against_the_committed_baseline(demo_run):
    assert (demo_run / "report" / "report.md").is_file()
    assert regress_main(["--baseline", str(BASELINE), "--results", str(demo_run / "results.csv")]) == 0


def test_methods_that_cannot_run_offline_say_why(demo_run):
    df = pd.read_csv(demo_run / "results.csv", keep_default_na=False, na_values=[""])
    unavailable = df[df.metric == "unavailable"]
    assert len(unavailable) > 0 and unavailable.error.str.contains("not found|not set up").all()
    report = (demo_run / "report" / "report.md").read_text()
    for method in unavailable.method:
        assert method in report


@pytest.mark.parametrize("task_name,config,metric", [("detection", "detection_demo", "mAP50-95"),
                                                     ("segmentation", "segmentation_demo", "mIoU")])
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
    direct = {(r.metric, r.cls): r.value
              for r in task.evaluate(items, task.dataset_classes(dataset), tmp_path / "work")}
    assert rows["hr"] == pytest.approx(direct[(metric, "all")], abs=1e-12)
