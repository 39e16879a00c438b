"""Quality metrics: the runner's numbers equal pyiqa called directly with the official protocol."""
import numpy as np
import pandas as pd
import pytest
import pyiqa
import scipy.io
import torch
from PIL import Image

from benchmarks.run import main as run_main
from downstream.metrics import QualityMetric, list_metrics
from sr.errors import MissingWeightsError

OFFICIAL = {"psnr": dict(test_y_channel=True, color_space="ycbcr"),
            "ssim": dict(test_y_channel=True, color_space="ycbcr")}


def _niqe_params(path):
    """A NIQE parameter file in the official layout (mu_prisparam, cov_prisparam) with made-up values:
    the real file cannot be downloaded here; both sides of the comparison read this same file."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(36, 36))
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"mu_prisparam": rng.normal(size=(1, 36)), "cov_prisparam": a @ a.T / 36 + np.eye(36)})


def _rgb(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def _check_real_pairs(shared_data, tmp_path, ids):
    m3fd = shared_data / "m3fd"
    weights = tmp_path / "weights"
    _niqe_params(weights / "pyiqa" / "niqe_modelparameters.mat")
    out = tmp_path / "run"
    dataset = f"folder:{m3fd / 'ir'}"
    code = run_main(["--datasets", dataset, "--methods", "bicubic,hr", "--tasks", "quality",
                     "--metrics", "psnr,ssim,niqe", "--weights-dir", str(weights), "--out", str(out),
                     "--quiet", "--no-report"])
    assert code == 0
    df = pd.read_csv(out / "results.csv")
    direct = {name: pyiqa.create_metric(name, device="cpu", **opts) for name, opts in OFFICIAL.items()}
    direct["niqe"] = pyiqa.create_metric("niqe", device="cpu",
                                         pretrained_model_path=str(weights / "pyiqa" / "niqe_modelparameters.mat"))
    for method in ("bicubic", "hr"):
        values = {name: [] for name in direct}
        for i in ids:
            hr = _rgb(m3fd / "ir" / f"{i}.png")
            if method == "bicubic":  # the official LR file, PIL-bicubic upscaled, saved as 8-bit PNG
                lr = Image.open(m3fd / "lr_x4_difiisr" / f"{i}x4.png").convert("RGB")
                sr_path = tmp_path / f"{i}_bicubic.png"
                lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC).save(sr_path)
                sr_img = _rgb(sr_path)
            else:
                sr_img = hr
            for name, metric in direct.items():
                values[name].append(float(metric(sr_img) if name == "niqe" else metric(sr_img, hr)))
        for name, vals in values.items():
            ours = df[(df.method == method) & (df.metric == name)].value.iloc[0]
            assert ours == pytest.approx(np.mean(vals), rel=1e-6, abs=1e-6), (method, name)
    return df


def test_runner_equals_pyiqa_on_real_pairs_quick(shared_data, tmp_path, monkeypatch):
    """Two of the ten official pairs (one 1024x768, the odd 440x320 one) in the default run."""
    ids = ["01828", "02090"]
    _limit_folder(monkeypatch, ids)
    _check_real_pairs(shared_data, tmp_path, ids)


@pytest.mark.slow
def test_runner_equals_pyiqa_on_all_ten_real_pairs(shared_data, tmp_path, monkeypatch):
    ids = sorted(p.stem[:-2] for p in (shared_data / "m3fd" / "lr_x4_difiisr").glob("*x4.png"))
    assert len(ids) == 10
    _limit_folder(monkeypatch, ids)
    _check_real_pairs(shared_data, tmp_path, ids)


def _limit_folder(monkeypatch, ids):
    """Restrict the ad-hoc folder data set to ``ids`` (the folder also holds two frames without LR)."""
    from downstream.datasets.folder import FolderDataset

    scan = FolderDataset._scan
    monkeypatch.setattr(FolderDataset, "_scan", lambda self: {i: p for i, p in scan(self).items() if i in ids})


def test_network_metrics_need_their_weights_and_never_download(tmp_path):
    for name in ("lpips", "niqe", "clipiqa", "musiq"):
        with pytest.raises(MissingWeightsError) as info:
            QualityMetric(name, weights_dir=tmp_path)
        assert str(tmp_path) in str(info.value) and "http" in str(info.value)


@pytest.mark.parametrize("name", ["lpips", "musiq"])
def test_random_weights_are_explicit_and_flagged(name):
    metric = QualityMetric(name, random_weights=True)
    assert metric.flags == ("random_weights",)
    x = torch.rand(1, 1, 64, 64)
    assert torch.isfinite(metric(x, x if metric.spec.reference else None)).all()
    assert QualityMetric("psnr", random_weights=True).flags == ()


def test_single_channel_is_scored_as_three_equal_channels():
    psnr = QualityMetric("psnr")
    a, b = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    assert float(psnr(a, b)) == pytest.approx(float(psnr(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1))))
    assert set(list_metrics()) >= {"psnr", "ssim", "lpips", "niqe", "clipiqa", "musiq"}
