"""The segmentation training loop: schedule, a tiny run, plain-state-dict outputs, exact resume."""

from __future__ import annotations

import pytest
import torch

from downstream.segmentation.train import DEFAULT_TRAIN, load_config, lr_factor, main, train


def test_lr_schedule_is_mmseg_segformer():
    t = {**DEFAULT_TRAIN, "iters": 25000, "warmup_iters": 1500}
    assert lr_factor(0, t) == pytest.approx(1e-6)
    assert lr_factor(750, t) == pytest.approx(1e-6 + (1 - 1e-6) * 0.5)
    assert lr_factor(1500, t) == pytest.approx(1.0)
    assert lr_factor(1500 + 23500 // 2, t) == pytest.approx(0.5)
    assert lr_factor(25000, t) == pytest.approx(0.0)


def test_paper_config_loads():
    from sr.config import CONFIG_DIR

    cfg = load_config(CONFIG_DIR / "segmentation" / "segformer_b1_fmb.yaml")
    t = cfg["train"]
    assert (t["iters"], t["batch_size"], t["lr"], t["weight_decay"]) == (25000, 8, 6e-5, 0.01)
    assert cfg["model"]["variant"] == "mit_b1" and cfg["model"]["pretrained"] == "mit_b1_imagenet"


def _config(tmp_path, out):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"""
model: {{variant: mit_tiny, num_classes: 15, drop_path_rate: 0.0}}
data: {{dataset: synthir_train, options: {{count: 3, height: 64, width: 96}}}}
ignore_classes: [unlabeled]
train: {{iters: 4, batch_size: 2, lr: 1.0e-3, warmup_iters: 1, crop_size: [48, 64], num_workers: 0,
         cache: true, device: cpu, threads: 1}}
output: {{dir: {out}, checkpoint_every: 2, log_every: 1, export: {out}/export.pth}}
""")
    return path


def test_tiny_run_resume_is_exact(tmp_path):
    full = train(load_config(_config(tmp_path, tmp_path / "a")), resume=False)
    cfg_b = load_config(_config(tmp_path, tmp_path / "b"))
    first = train(cfg_b, resume=False, max_iters=2)
    assert first.name == "last.pth"
    assert torch.load(first, weights_only=True)["iter"] == 2
    resumed = train(cfg_b, resume=True)
    a = torch.load(full, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert set(a) == set(b) and all(isinstance(v, torch.Tensor) for v in a.values())
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert (tmp_path / "a" / "export.pth").is_file()


def test_cli_reports_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {variant: mit_tiny}\ndata: {}\n")
    assert main(["--config", str(bad)]) == 2
    assert "exactly one of" in capsys.readouterr().err
