"""The committed demo SegFormer on synthir: HR frames score higher than bicubic-upscaled ones."""

from __future__ import annotations

from pathlib import Path

from downstream.datasets import load_dataset
from downstream.imageio import write_png
from downstream.tasks import TaskItem, load_task

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "sr" / "weights" / "demo" / "segformer_demo_synthir.pth"


def _items(dataset, method: str, out: Path) -> list[TaskItem]:
    import sr

    m = sr.load_method(method) if method != "hr" else None
    items = []
    for sid in dataset.ids():
        sample = dataset.load(sid)
        image = sample.hr if m is None else m.upscale(sample.lr[None])[0]
        path = out / method / f"{sid}.png"
        write_png(path, image.permute(1, 2, 0).numpy())
        items.append(TaskItem(id=sid, image=path, labels={"mask": sample.mask}))
    return items


def test_task_configs_load():
    demo = load_task("segmentation_demo", device="cpu")
    assert demo.variant == "mit_tiny" and demo.weights_path() == WEIGHTS
    assert WEIGHTS.stat().st_size < 10 * 2**20
    fmb = load_task("segmentation_fmb", device="cpu", random_weights=True)
    assert fmb.variant == "mit_b1" and fmb.ignore_classes == ("unlabeled",) and fmb.flags == ("random_weights",)


def test_demo_model_hr_beats_bicubic(tmp_path):
    dataset = load_dataset("synthir_demo", count=6)
    task = load_task("segmentation_demo", device="cpu")
    classes = dataset.classes("mask")
    hr_rows = task.evaluate(_items(dataset, "hr", tmp_path), classes, tmp_path / "w1")
    bic_rows = task.evaluate(_items(dataset, "bicubic", tmp_path), classes, tmp_path / "w2")
    hr = {(r.metric, r.cls): r.value for r in hr_rows}
    bic = {(r.metric, r.cls): r.value for r in bic_rows}
    assert hr[("mIoU", "all")] > bic[("mIoU", "all")]
    assert hr[("mIoU", "all")] > 0.35  # the demo model has learned something (0.452 on all 12)
    assert ("IoU", "unlabeled") not in hr
    # the same frames give the same rows (the hr row reproduces the HR score exactly)
    assert task.evaluate(_items(dataset, "hr", tmp_path / "again"), classes, tmp_path / "w3") == hr_rows
