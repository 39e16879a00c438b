"""A pickle that runs code when unpickled is placed at every weights path the registry names (``python -m
sr.weights list``) and at the library caches pyiqa / torchvision / CLIP would read by default ($TORCH_HOME).
Then every metric, method and task is run, the trainer validates, the guidance / backbone / detector loaders
are called and the trusted conversions are asked for: no payload runs (0 markers), the benchmark finishes
with error rows naming the refused files, and PSNR is still computed."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from poison import poison

from sr import weights as W
from sr.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _poison(path: Path, markers: Path) -> None:
    poison(path, markers / f"{len(list(path.parents))}_{path.name}")


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    root = tmp_path_factory.mktemp("poisoned")
    weights, torch_home, markers = root / "weights", root / "torch_home", root / "markers"
    markers.mkdir()
    paths = [
        W.path_of(name, weights) for name, ent in W.registry().items() if not ent.file.startswith(W.BUNDLED_PREFIX)
    ]  # the demo models are the project's own, in the repo
    hub = torch_home / "hub"
    paths += [
        hub / "checkpoints" / "alexnet-owt-7be5be79.pth",
        hub / "checkpoints" / "vgg16-397923af.pth",
        hub / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth",
        hub / "pyiqa" / "musiq_koniq_ckpt-e95806b9.pth",
        hub / "pyiqa" / "niqe_modelparameters.mat",
        hub / "clip" / "RN50.pt",
    ]
    for path in paths:
        _poison(path, markers)
    # control: the payload does run when a file is unpickled without restrictions
    control = root / "control.pth"
    _poison(control, root)
    torch.load(control, weights_only=False)
    assert len([p for p in root.iterdir() if p.is_dir() and p.name.endswith("control.pth")]) == 1
    return {"weights": weights, "torch_home": torch_home, "markers": markers, "paths": paths}


def _markers(poisoned) -> list[str]:
    return sorted(p.name for p in poisoned["markers"].iterdir())


def test_every_registry_path_is_poisoned(poisoned):
    names = [n for n, e in W.registry().items() if not e.file.startswith(W.BUNDLED_PREFIX)]
    assert len(names) >= 30 and all(W.path_of(n, poisoned["weights"]).is_file() for n in names)


def test_benchmark_with_every_metric_method_and_task(poisoned, tmp_path, monkeypatch):
    from benchmarks.run import main
    from downstream.metrics import list_metrics
    from sr.registry import list_methods

    monkeypatch.setenv("TORCH_HOME", str(poisoned["torch_home"]))
    out = tmp_path / "run"
    tasks = [
        "quality",
        str(REPO / "configs" / "tasks" / "detection_m3fd.yaml"),
        str(REPO / "configs" / "tasks" / "segmentation_fmb.yaml"),
    ]
    code = main(
        [
            "--methods",
            "all",
            "--metrics",
            ",".join(list_metrics()),
            "--tasks",
            ",".join(tasks),
            "--weights-dir",
            str(poisoned["weights"]),
            "--limit",
            "1",
            "--out",
            str(out),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert _markers(poisoned) == []
    assert code == 0 and (out / "results.csv").is_file() and (out / "report" / "report.md").is_file()
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    assert set(df.method) == set(list_methods())
    psnr = df[(df.method == "bicubic") & (df.metric == "psnr") & (df["class"] == "all")]
    assert len(psnr) == 1 and math.isfinite(psnr.value.iloc[0])
    for metric in ("lpips", "musiq", "niqe"):  # their weights files are the poisoned ones: error rows
        rows = df[(df.method == "bicubic") & (df.metric == metric)]
        assert len(rows) == 1 and not math.isfinite(rows.value.iloc[0]) and rows.error.iloc[0], metric
    assert "refusing to load" in df[(df.method == "bicubic") & (df.metric == "lpips")].error.iloc[0]
    refused = df[(df.method == "resshift_v1") & (df.metric == "unavailable")].error.iloc[0]
    assert "refusing to load" in refused and "posix.mkdir" in refused
    for task in ("detection", "segmentation"):
        rows = df[(df.method == "bicubic") & (df.task == task)]
        assert len(rows) == 1 and rows.metric.iloc[0] in ("unavailable", "error"), task
        assert "refusing to" in rows.error.iloc[0] and "posix.mkdir" in rows.error.iloc[0], task


def test_trainer_validation_and_feature_networks(poisoned, tmp_path, monkeypatch, capsys):
    from downstream.detection.yolo import load_detector
    from downstream.segmentation.model import build_segformer, load_backbone_weights
    from sr.guidance.terms import build_term
    from sr.train.__main__ import main as train_main
    from sr.train.objectives.hfdiff import build_dino
    from sr.weights.cli import main as weights_main

    monkeypatch.setenv("TORCH_HOME", str(poisoned["torch_home"]))
    wdir = poisoned["weights"]
    code = train_main(
        [
            "--config",
            "resshift_demo",
            "--weights-dir",
            str(wdir),
            "--out",
            str(tmp_path / "t"),
            "--device",
            "cpu",
            "--set",
            "train.iterations=1",
            "--set",
            "data.max_images=2",
            "--set",
            "data.val_images=1",
            "--set",
            "data.batch_size=1",
            "--set",
            "train.progress=false",
            "--set",
            "train.tensorboard=false",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "validation without LPIPS" in out and '"psnr"' in out
    attempts = [
        lambda: build_term("vgg", weights_dir=wdir),
        lambda: build_term("lpips", weights_dir=wdir),
        lambda: build_term("sam", weights_dir=wdir),
        lambda: build_dino(wdir),
        lambda: load_detector("yolov5su_coco", wdir, trust_pickle=True),
        lambda: load_detector("yolov5s_m3fd", wdir),
        lambda: load_backbone_weights(build_segformer("mit_b1", 15), W.path_of("mit_b1_imagenet", wdir)),
    ]
    for attempt in attempts:
        with pytest.raises(UserError):
            attempt()
    assert weights_main(["--weights-dir", str(wdir), "convert", "clip_rn50"]) == 2
    assert "sha256" in capsys.readouterr().err
    assert _markers(poisoned) == []
