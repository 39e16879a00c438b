"""Tasks are plugins: a task defined here (one class + one YAML, nothing else touched) runs through
``python -m benchmarks.run`` and shows up in results.csv, the per-image file, report.md and the paper report;
benchmarks/ and reports/ never compare against a task's name."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from benchmarks.run import main as run_main
from downstream.datasets import load_dataset
from downstream.imageio import read_image
from downstream.sample import LABEL_BOXES
from downstream.tasks import MetricRow, ResultMetric, Task, TaskItem, TaskReport, load_task
from reports.tables import load_results

REPO = Path(__file__).resolve().parents[1]


def _box_pixels(image: np.ndarray, boxes: np.ndarray, class_id: int) -> np.ndarray:
    """Intensities inside the boxes of one class (image (H, W) in [0, 1], boxes (N, 5) in pixels)."""
    values = [image[int(y1) : int(y2), int(x1) : int(x2)].ravel() for c, x1, y1, x2, y2 in boxes if int(c) == class_id]
    return np.concatenate(values) if values else np.zeros(0)


class BoxBrightness(Task):
    """Toy task: mean SR intensity inside the ground-truth boxes, per class and overall, plus per image."""

    name = "box_brightness"
    labels = (LABEL_BOXES,)
    metrics = (ResultMetric("box_mean", higher_better=False, per_class=True, label="mean"),)
    report = TaskReport(
        per_class="box_mean", overall="box_mean", overall_label="all boxes", figure="ground-truth boxes outlined"
    )

    def __init__(
        self, *, gain: float = 1.0, device: str = "cpu", weights_dir: str | None = None, random_weights: bool = False
    ):
        self.gain = float(gain)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "gain": self.gain}

    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        per_class: dict[int, list[np.ndarray]] = {i: [] for i in range(len(class_names))}
        rows = []
        for item in items:
            image = read_image(item.image, channels=1)[..., 0] * self.gain
            boxes = item.label(LABEL_BOXES)
            inside = [_box_pixels(image, boxes, c) for c in per_class]
            for c, values in enumerate(inside):
                per_class[c].append(values)
            rows.append(MetricRow("box_mean", float(np.concatenate(inside).mean()), image=item.id))
        everything = np.concatenate([v for vs in per_class.values() for v in vs])
        rows.append(MetricRow("box_mean", float(everything.mean()), n=len(items)))
        for c, name in enumerate(class_names):
            values = np.concatenate(per_class[c])
            if values.size:
                rows.append(
                    MetricRow("box_mean", float(values.mean()), cls=name, n=sum(bool(v.size) for v in per_class[c]))
                )
        return rows

    def figure(self, images: dict[str, Path], crop, truth: Mapping[str, Any], class_names, workdir: Path):
        x0, y0, x1, y1 = crop
        panels = []
        for path in images.values():
            with Image.open(path) as im:
                panel = im.convert("RGB").crop((x0, y0, x1, y1))
            pen = ImageDraw.Draw(panel)
            for _, bx1, by1, bx2, by2 in truth[LABEL_BOXES]:
                pen.rectangle((bx1 - x0, by1 - y0, bx2 - x0, by2 - y0), outline=(255, 0, 0))
            panels.append(panel)
        canvas = Image.new("RGB", (sum(p.width for p in panels), panels[0].height))
        for k, panel in enumerate(panels):
            canvas.paste(panel, (k * panels[0].width, 0))
        return canvas


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    (root / "box_brightness.yaml").write_text(
        f"description: toy task\nfactory: {__name__}:BoxBrightness\noptions: {{gain: 1.0}}\n"
    )
    (root / "toy_suite.yaml").write_text(
        "datasets: [synthir_demo]\nmethods: [hr, bicubic]\nmetrics: []\n"
        f"tasks: {{bright: {root / 'box_brightness.yaml'}}}\n"
    )
    out = root / "run"
    assert run_main(["--suite", str(root / "toy_suite.yaml"), "--limit", "2", "--out", str(out), "--quiet"]) == 0
    return root, out


def test_toy_task_rows_match_a_direct_computation(toy_run):
    root, out = toy_run
    df = load_results(out / "results.csv")
    toy = df[df.task == "bright"]
    assert set(toy.method) == {"hr", "bicubic"} and set(toy.metric) == {"box_mean"} and (toy.error == "").all()
    assert (toy.suite == "toy_suite").all()
    # the hr row by hand, from the data set's HR frames (the hr method writes them as 8-bit PNGs)
    dataset = load_dataset("synthir_demo")
    classes = dataset.classes(LABEL_BOXES)
    pixels: dict[str, list[np.ndarray]] = {c: [] for c in classes}
    for sample_id in dataset.ids()[:2]:
        sample = dataset.load(sample_id)
        hr = np.round(sample.hr[0].numpy() * 255) / 255
        for c, name in enumerate(classes):
            pixels[name].append(_box_pixels(hr, sample.boxes, c))
    hr_rows = toy[toy.method == "hr"].set_index("class").value
    for name, values in pixels.items():
        values = np.concatenate(values)
        if values.size:
            assert hr_rows[name] == pytest.approx(values.mean(), abs=1e-6)
        else:
            assert name not in hr_rows
    assert hr_rows["all"] == pytest.approx(
        np.concatenate([np.concatenate(v) for v in pixels.values()]).mean(), abs=1e-6
    )
    # per-image values go to their own file, not results.csv
    per_image = pd.read_csv(out / "per_image" / "synthir_demo__hr__bright.csv")
    assert list(per_image.image) == dataset.ids()[:2] and (per_image.metric == "box_mean").all()


def test_toy_task_appears_in_the_reports(toy_run):
    _, out = toy_run
    md = (out / "report" / "report.md").read_text()
    assert "## Bright: box_mean per class (lower is better)" in md
    assert (out / "report" / "bright_per_class.csv").is_file()
    assert (out / "report" / "radar_bright_synthir_demo.png").stat().st_size > 1000
    paper = out / "report" / "paper"
    assert (paper / "figures" / "fig6_bright_synthir_demo.png").stat().st_size > 1000
    figure4 = sorted((paper / "figures").glob("fig4_synthir_demo_*.png"))
    assert len(figure4) == 1 and figure4[0].stat().st_size > 1000
    text = (paper / "paper.md").read_text()
    assert "ground-truth boxes outlined" in text and "fig6_bright_synthir_demo.png" in text


def test_a_task_needing_labels_no_sample_has_is_a_config_error(tmp_path):
    from sr.errors import ConfigError

    class Depth(BoxBrightness):
        labels = ("depth",)

    globals()["Depth"] = Depth
    (tmp_path / "depth.yaml").write_text(f"factory: {__name__}:Depth\n")
    try:
        with pytest.raises(ConfigError, match="labels \\['depth'\\] that no sample has"):
            load_task(str(tmp_path / "depth.yaml"))
    finally:
        del globals()["Depth"]


TASK_NAMES = {"detection", "segmentation"}


def _task_name_comparisons(source: str, where: str) -> list[str]:
    """``x == "detection"``, ``x in ("detection", ...)`` and the like in one source text."""
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if not isinstance(node, ast.Compare):
            continue
        for operand in [node.left, *node.comparators]:
            consts = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
            if any(isinstance(c, ast.Constant) and c.value in TASK_NAMES for c in consts):
                found.append(f"{where}:{node.lineno}")
    return found


def test_benchmarks_and_reports_never_compare_against_a_task_name():
    assert _task_name_comparisons('if task == "detection":\n    pass\nok = t in ("x", "segmentation")', "probe") == [
        "probe:1",
        "probe:3",
    ]
    found = [
        hit
        for package in ("benchmarks", "reports")
        for path in sorted((REPO / package).rglob("*.py"))
        for hit in _task_name_comparisons(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert not found, found
