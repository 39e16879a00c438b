"""SegmentationTask end to end on tiny models: rows, identity, weights I/O, mmseg equality, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from downstream.sample import IGNORE_INDEX
from downstream.segmentation.metrics import mmseg_iou_metric
from downstream.segmentation.model import (
    build_segformer,
    convert_nvlabs_mit,
    load_backbone_weights,
    load_segformer_weights,
    save_state_dict,
)
from downstream.segmentation.task import SegmentationTask
from downstream.tasks import TaskItem
from sr.errors import ConfigError, MissingWeightsError, UserError

CLASSES = ("unlabeled", "a", "b", "c")


def _items(tmp_path: Path, n: int = 2, size=(48, 64), mode: str = "L") -> list[TaskItem]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        img = rng.integers(0, 256, size=size, dtype=np.uint8)
        path = tmp_path / f"f{i}.png"
        Image.fromarray(img).convert(mode).save(path)
        mask = rng.integers(0, len(CLASSES), size=size).astype(np.uint8)
        mask[:3] = IGNORE_INDEX
        items.append(TaskItem(id=f"f{i}", image=path, labels={"mask": mask}))
    return items


def test_shim_lets_mmseg_import_and_raises_if_an_op_is_called():
    from downstream.segmentation.mmcv_shim import CompiledOpUnavailable, import_mmseg

    import_mmseg()
    import sys

    ext = sys.modules["mmcv._ext"]
    assert ext.__spec__ is not None
    with pytest.raises(CompiledOpUnavailable, match="mmcv-lite"):
        ext.nms_forward()


def test_rows_match_mmseg_iou_metric_on_saved_predictions(tmp_path):
    items = _items(tmp_path)
    task = SegmentationTask(
        variant="mit_tiny", random_weights=True, device="cpu", save_predictions=True, ignore_classes=["unlabeled"]
    )
    rows = task.evaluate(items, CLASSES, tmp_path / "work")
    assert task.flags == ("random_weights",)
    by = {(r.metric, r.cls): r for r in rows}
    assert ("IoU", "unlabeled") not in by and {"mIoU", "aAcc"} <= {r.metric for r in rows}
    assert all(r.n == 2 for r in rows)
    preds = [np.asarray(Image.open(tmp_path / "work" / "pred" / f"{it.id}.png")) for it in items]
    assert all((p != 0).all() for p in preds)  # an ignored class is never predicted
    labels = [np.where(it.label("mask") == 0, IGNORE_INDEX, it.label("mask")) for it in items]
    _, per_class = mmseg_iou_metric(preds, labels, CLASSES)
    for i, name in enumerate(CLASSES[1:], start=1):
        if ("IoU", name) in by:
            assert by[("IoU", name)].value == pytest.approx(float(per_class["IoU"][i]), rel=1e-6)
    assert by[("aAcc", "all")].value == pytest.approx(float(per_class["aAcc"]), rel=1e-6)
    assert by[("mIoU", "all")].value == pytest.approx(float(np.nanmean(per_class["IoU"])), rel=1e-6)


def test_weights_file_round_trip_identity_and_slide(tmp_path):
    torch.manual_seed(1)
    model = build_segformer("mit_tiny", len(CLASSES))
    weights = save_state_dict(model, tmp_path / "seg.pth")
    items = _items(tmp_path, n=1, mode="RGB")
    whole = SegmentationTask(weights=str(weights), variant="mit_tiny", device="cpu")
    ident = whole.identity()
    assert len(ident["weights_sha256"]) == 64 and ident["mode"] == "whole"
    rows_a = whole.evaluate(items, CLASSES, tmp_path / "a")
    rows_b = SegmentationTask(weights=str(weights), variant="mit_tiny", device="cpu").evaluate(
        items, CLASSES, tmp_path / "b"
    )
    assert rows_a == rows_b
    slide = SegmentationTask(
        weights=str(weights), variant="mit_tiny", device="cpu", mode="slide", crop_size=[32, 32], stride=[24, 24]
    )
    assert slide.identity()["crop_size"] == [32, 32]
    assert {r.metric for r in slide.evaluate(items, CLASSES, tmp_path / "c")} >= {"mIoU", "aAcc"}
    # the weights are used: a task with other weights predicts differently
    img = np.asarray(Image.open(items[0].image).convert("L"), np.float32)[..., None] / 255
    other = SegmentationTask(variant="mit_tiny", random_weights=True, seed=5, device="cpu")
    assert not np.array_equal(whole.predict(img, len(CLASSES)), other.predict(img, len(CLASSES)))


def test_wrong_weights_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="not a name in configs/weights.yaml"):
        SegmentationTask(weights="nope.pth").identity()
    model = build_segformer("mit_tiny", 2)
    path = save_state_dict(model, tmp_path / "two.pth")
    task = SegmentationTask(weights=str(path), variant="mit_tiny", device="cpu")
    with pytest.raises(UserError, match="does not fit"):
        task.evaluate(_items(tmp_path, n=1), CLASSES, tmp_path)
    with pytest.raises(ConfigError):
        SegmentationTask(variant="mit_tiny")
    with pytest.raises(ConfigError):
        SegmentationTask(variant="mit_b9", random_weights=True)


def test_registry_weights_resolve_from_weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IRSR_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="segformer_b1_fmb"):
        SegmentationTask(weights="segformer_b1_fmb").identity()
    from sr.weights import path_of

    target = path_of("segformer_b1_fmb")
    save_state_dict(build_segformer("mit_tiny", len(CLASSES)), target)
    task = SegmentationTask(weights="segformer_b1_fmb", variant="mit_tiny", device="cpu")
    assert task.weights_path() == target


def _to_nvlabs(backbone_state: dict) -> dict:
    """Inverse of convert_nvlabs_mit, for building a test file in the original NVlabs layout."""
    out = {}
    for key, value in backbone_state.items():
        parts = key.split(".")
        stage, sub = int(parts[1]), parts[2]
        rest = ".".join(parts[3:])
        if sub == "0":
            out[f"patch_embed{stage + 1}." + rest.replace("projection.", "proj.")] = value
        elif sub == "2":
            out[f"norm{stage + 1}." + rest] = value
        else:
            block, name = parts[3], ".".join(parts[4:])
            prefix = f"block{stage + 1}.{block}."
            if name.startswith("attn.attn.in_proj_"):
                kind = name.rsplit("_", 1)[1]
                dim = value.shape[0] // 3
                out[prefix + f"attn.q.{kind}"] = value[:dim]
                out[prefix + f"attn.kv.{kind}"] = value[dim:]
            elif name.startswith("attn.attn.out_proj."):
                out[prefix + "attn.proj." + name.rsplit(".", 1)[1]] = value
            elif name.startswith("ffn.layers."):
                idx, kind = name.split(".")[2], name.split(".")[3]
                new = {"0": "mlp.fc1.", "1": "mlp.dwconv.dwconv.", "4": "mlp.fc2."}[idx] + kind
                if idx in ("0", "4") and kind == "weight":
                    value = value.reshape(value.shape[0], value.shape[1])
                out[prefix + new] = value
            else:
                out[prefix + name] = value
    out["head.weight"] = torch.zeros(1000, 8)
    return out


@pytest.mark.parametrize("layout", ["mmseg", "nvlabs", "wrapped"])
def test_imagenet_backbone_loads_from_weights_dir(tmp_path, monkeypatch, layout):
    """The MiT ImageNet file is read from the weights directory, in mmseg's or NVlabs' layout."""
    from sr.weights import path_of

    monkeypatch.setenv("IRSR_WEIGHTS_DIR", str(tmp_path))
    torch.manual_seed(3)
    source = build_segformer("mit_tiny", 4).backbone.state_dict()
    state = {
        "nvlabs": _to_nvlabs(source),
        "mmseg": source,
        "wrapped": {"state_dict": {f"backbone.{k}": v for k, v in source.items()}},
    }[layout]
    path = path_of("mit_b1_imagenet")
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    if layout == "nvlabs":
        assert set(convert_nvlabs_mit(state)) == set(source)
    model = build_segformer("mit_tiny", 4)
    load_backbone_weights(model, path)
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, source[key], rtol=0, atol=0)


def test_pickled_objects_are_refused(tmp_path):
    import argparse

    path = tmp_path / "evil.pth"  # like mmengine's full checkpoints: a pickled object besides the tensors
    torch.save({"state_dict": {}, "meta": argparse.Namespace(a=1)}, path)
    with pytest.raises(UserError):
        load_segformer_weights(build_segformer("mit_tiny", 2), path)
