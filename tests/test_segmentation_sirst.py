"""SIRST-v2 binary masks (awkward image modes and sizes) load and evaluate through the harness path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, shared_path
from PIL import Image

from downstream.datasets import load_dataset
from downstream.imageio import write_png
from downstream.segmentation.metrics import mmseg_iou_metric
from downstream.segmentation.task import SegmentationTask
from downstream.tasks import TaskItem

SIRST = SHARED / "data" / "sirst_v2_seg"

pytestmark = pytest.mark.realdata


@pytest.fixture(autouse=True)
def _sirst_present():
    """Every test here reads SIRST-v2 from ../shared: skip (or fail in CI) when it is absent."""
    shared_path("data", "sirst_v2_seg", "images", what="SIRST-v2 samples")


def _one_per_mode(limit_pixels: int = 400 * 400) -> list[str]:
    """One small-ish image of each PIL mode present (L, RGB, RGBA, P), plus one of odd size."""
    picked: dict[str, str] = {}
    for path in sorted((SIRST / "images").glob("*.png")):
        with Image.open(path) as img:
            key = img.mode if img.width * img.height <= limit_pixels else None
            if key and key not in picked:
                picked[key] = path.stem
            if img.width % 4 and "odd" not in picked and img.width * img.height <= limit_pixels:
                picked["odd"] = path.stem
    return list(dict.fromkeys(picked.values()))


def test_sirst_masks_evaluate_like_mmseg(tmp_path):
    ids = _one_per_mode()
    assert len(ids) >= 3
    (tmp_path / "list.txt").write_text("\n".join(ids) + "\n")
    ds = load_dataset(
        "sirst_v2", root=str(SIRST / "images"), masks_dir=str(SIRST / "masks"), list_file=str(tmp_path / "list.txt")
    )
    assert ds.classes("mask") == ("background", "target") and ds.classes("boxes") is None
    items = []
    for sid in ds.ids():
        sample = ds.load(sid)
        assert sample.mask.shape == tuple(sample.hr.shape[1:])  # modcropped together
        assert set(np.unique(sample.mask)) <= {0, 1}
        path = tmp_path / "hr" / f"{sid}.png"
        write_png(path, sample.hr.permute(1, 2, 0).numpy())
        items.append(TaskItem(id=sid, image=path, labels={"mask": sample.mask}))
    assert any(it.label("mask").any() for it in items)

    task = SegmentationTask(variant="mit_tiny", random_weights=True, device="cpu", save_predictions=True)
    rows = task.evaluate(items, ds.classes("mask"), tmp_path / "work")
    by = {(r.metric, r.cls): r.value for r in rows}
    assert {("mIoU", "all"), ("aAcc", "all"), ("IoU", "background")} <= set(by)
    preds = [np.asarray(Image.open(tmp_path / "work" / "pred" / f"{it.id}.png")) for it in items]
    _, ref = mmseg_iou_metric(preds, [it.label("mask") for it in items], ds.classes("mask"))
    assert by[("aAcc", "all")] == pytest.approx(float(ref["aAcc"]), rel=1e-6)
    assert by[("IoU", "background")] == pytest.approx(float(ref["IoU"][0]), rel=1e-6)
    assert by[("mIoU", "all")] == pytest.approx(float(np.nanmean(ref["IoU"])), rel=1e-6)


def test_sirst_yaml_root_is_documented_and_overridable():
    from downstream.datasets import dataset_config

    cfg = dataset_config("sirst_v2")
    assert cfg["kind"] == "folder" and cfg["mask_values"] == {0: 0, 255: 1}
    ds = load_dataset("sirst_v2", root=str(SIRST / "images"), masks_dir=str(SIRST / "masks"), limit=2)
    assert len(ds.ids()) == 2
