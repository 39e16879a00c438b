"""sr.train: typed configs, every objective on a tiny pixel-space model, and kill/resume equality."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sr.errors import ConfigError
from sr.train.config import OptimConfig, load_config
from sr.train.trainer import Trainer, lr_at

ROOT = Path(__file__).resolve().parents[1]

TINY_UNET = dict(
    image_size=8,
    in_channels=51,
    out_channels=48,
    model_channels=32,
    channel_mult=[1, 2],
    num_res_blocks=1,
    attention_resolutions=[4],
    num_head_channels=8,
    swin_embed_dim=32,
    window_size=4,
    mlp_ratio=1,
    cond_lq=True,
)


def tiny_config(tmp_path: Path, name="tiny", objective=None, iterations=6, **sections) -> Path:
    cfg = {
        "name": name,
        "out_dir": str(tmp_path / name),
        "data": {
            "dataset": "synthir_train",
            "val_dataset": "synthir_val",
            "max_images": 2,
            "val_images": 1,
            "patch_size": 32,
            "batch_size": 2,
        },
        "model": {
            "first_stage": "pixel_unshuffle",
            "schedule": "difiisr_t15",
            "pad_multiple": 8,
            "unet": dict(TINY_UNET),
        },
        "optim": {"lr": 1e-3, "warmup_steps": 2, "schedule": "cosine"},
        "train": {
            "iterations": iterations,
            "log_every": 1,
            "threads": 1,
            "progress": False,
            "ema_rate": 0.9,
            "tensorboard": False,
        },
        "objective": objective or {"kind": "resshift"},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value) if isinstance(value, dict) else cfg.__setitem__(key, value)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_unknown_key_is_config_error(tmp_path):
    path = tiny_config(tmp_path, optim={"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="optim: unknown key.*learning_rate"):
        load_config(path)
    path = tiny_config(tmp_path, objective={"kind": "resshift", "lpips_wieght": 1.0})
    cfg = load_config(path)
    with pytest.raises(ConfigError, match="lpips_wieght"):
        Trainer(cfg, device="cpu")


def test_lr_schedule_warmup_cosine_step():
    o = OptimConfig(lr=1.0, warmup_steps=4, schedule="cosine", lr_min=0.1)
    o.total_steps = 14
    assert [lr_at(s, o) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, o) == pytest.approx(1.0) and lr_at(14, o) == pytest.approx(0.1)
    s = OptimConfig(lr=1.0, schedule="step", milestones=[3, 5], gamma=0.5)
    assert [lr_at(i, s) for i in (0, 3, 5)] == [1.0, 0.5, 0.25]


def _teacher(tmp_path) -> Path:
    from safetensors.torch import save_file

    from sr.builders import build_unet

    torch.manual_seed(0)
    path = tmp_path / "teacher.safetensors"
    save_file(build_unet(TINY_UNET).state_dict(), str(path))
    return path


FFT_INJECT = {
    "terms": [{"kind": "fft", "mode": "inject"}, {"kind": "edge", "mode": "sum", "weight": 0.5}],
    "rho": 0.01,
    "second_order": False,
}


@pytest.mark.parametrize("objective", ["resshift", "difiisr", "difiisr_sinsr", "sinsr", "upsr", "hfdiff"])
def test_objectives_train_two_steps(tmp_path, objective):
    unet = dict(TINY_UNET)
    model = {}
    spec = {"kind": objective}
    if objective == "difiisr":
        spec = {"kind": "difiisr", "guidance": FFT_INJECT, "guidance_start": 1}
    elif objective == "difiisr_sinsr":
        spec = {
            "kind": "difiisr",
            "base": "sinsr",
            "guidance": FFT_INJECT,
            "base_options": {"teacher": str(_teacher(tmp_path))},
        }
    elif objective == "sinsr":
        spec["teacher"] = str(_teacher(tmp_path))
    elif objective == "hfdiff":
        spec.update(teacher=str(_teacher(tmp_path)), inn_channels=16, inn_modules=1, dino_size=28)
    elif objective == "upsr":
        unet["in_channels"] = 48 + 96
        model = {"input_scaling": "upsr"}
    path = tiny_config(
        tmp_path,
        objective=spec,
        iterations=2,
        model={**model, "unet": unet},
        random_weights=True,
        data={"val_dataset": None},
    )
    trainer = Trainer(load_config(path), device="cpu")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    logs = [trainer.train_step() for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(log["loss"])) for log in logs)
    changed = any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert changed
    if objective == "difiisr":
        assert "guid_grad_rms" not in logs[0] and "guid_grad_rms" in logs[1]  # stage switch at lambda_t = 1
        assert "guid_sum_loss" in logs[1]


def test_upsr_validation_samples_through_the_one_sampler_path(tmp_path):
    """The trainer validates a UPSR model with ResShiftSampler and the objective's conditioning (g(y), uncertainty
    noise, clamped x0), the path the upsr_demo method samples with."""
    from sr.sampler import UPSRConditioning

    unet = {**TINY_UNET, "in_channels": 48 + 96}
    model = {"input_scaling": "upsr", "unet": unet}
    path = tiny_config(tmp_path, objective={"kind": "upsr"}, iterations=1, model=model, random_weights=True)
    trainer = Trainer(load_config(path), device="cpu")
    sampler = trainer.sampler()
    assert isinstance(sampler.upsr, UPSRConditioning) and sampler.clip_denoised
    assert sampler.upsr.prior is trainer.objective.prior
    scores = trainer.validate()
    assert torch.isfinite(torch.tensor(scores["psnr"]))


def _run(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sr.train", "--config", str(config), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_run_resumes_bit_for_bit(tmp_path):
    from safetensors.torch import load_file

    common = dict(iterations=30, train={"save_every": 3, "val_every": 0})
    objective = {"kind": "difiisr", "guidance": FFT_INJECT, "guidance_start": 10}
    full = tiny_config(tmp_path, name="full", objective=objective, **common)
    proc = _run(full)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out

    killed = tiny_config(tmp_path, name="killed", objective=objective, **common)
    proc = _run(killed)
    ckpt = tmp_path / "killed" / "ckpt" / "last.pt"
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from sr.checkpoint import load_checkpoint

    step = int(load_checkpoint(ckpt)["step"])
    assert step < 30 and not (tmp_path / "killed" / "ema.safetensors").exists(), "run finished before the kill"
    proc = _run(killed, "--resume")
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    for fname in ("model.safetensors", "ema.safetensors"):
        a, b = load_file(str(tmp_path / "full" / fname)), load_file(str(tmp_path / "killed" / fname))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{fname}:{k} differs after resume from step {step}"


def test_every_shipped_training_config_loads():
    from sr.train.config import TRAIN_CONFIG_DIR
    from sr.train.objectives import OBJECTIVES

    names = [p for p in sorted(TRAIN_CONFIG_DIR.glob("*.yaml")) if not p.stem.startswith("_")]
    assert len(names) >= 20
    for path in names:
        cfg = load_config(path)
        assert cfg.objective["kind"] in OBJECTIVES, path


@pytest.mark.parametrize(
    "name", ["resshift_demo", "sinsr_demo", "difiisr_demo", "difiisr_demo_sensor", "upsr_demo", "hfdiff_demo"]
)
def test_demo_weights_load_in_their_methods(name):
    from sr import weights
    from sr.registry import load_method

    if not weights.path_of(name).is_file():
        pytest.skip(f"demo weights {name} not committed")
    method = load_method(name)
    lr = torch.rand(1, 1, 12, 20)
    out = method.upscale(lr)
    assert out.shape == (1, 1, 48, 80) and torch.isfinite(out).all()
    assert method.weight_files()["unet"].stat().st_size < 6_000_000


@pytest.mark.slow  # difiisr_demo distils from the 15-step teacher: ~10 min for 2 x 60 iterations on 2 shared cores
@pytest.mark.timeout(1800)
def test_injected_guidance_lowers_the_validation_guidance_loss(tmp_path):
    """In small: the shipped difiisr_demo config (SinSR distillation base, FFT guidance injected, wrt x0)
    against the same run without guidance (difiisr_demo_none), same seed, data order, t and noise:
    the EMA model's one-step SR of the validation frames has the lower FFT loss. The full 5-seed
    comparison (300 iterations, inject x_t / x0 / sum / none) is in sr/weights/demo/README_sr_demo_models.md."""
    val = {}
    for name in ("difiisr_demo", "difiisr_demo_none"):
        cfg = load_config(
            name,
            {
                "train.iterations": 60,
                "out_dir": str(tmp_path / name),
                "train.progress": False,
                "train.tensorboard": False,
                "data.max_images": 16,
            },
        )
        val[name] = Trainer(cfg, device="cpu").fit()
    assert val["difiisr_demo"]["val_fft"] < val["difiisr_demo_none"]["val_fft"] - 0.01


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)
def test_torchrun_two_cpu_ranks(tmp_path):
    """The DDP path (``torchrun``, WORLD_SIZE 2, gloo on CPU): both ranks train, rank 0 alone logs and
    saves, and the exported weights load."""
    path = tiny_config(tmp_path, name="ddp", iterations=3)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "sr.train",
            "--config",
            str(path),
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks
        proc.communicate()
        pytest.fail("torchrun with two CPU ranks did not finish in 300 s")
    assert proc.returncode == 0, err[-3000:]
    out = tmp_path / "ddp"
    from sr.checkpoint import load_checkpoint

    assert load_checkpoint(out / "ema.safetensors")
    steps = [
        line.split(",")[0]
        for line in (out / "log.csv").read_text().splitlines()[1:]
        if line.split(",")[1:3] == ["train", "loss"]
    ]
    assert steps == ["1", "2", "3"]  # one row per step: only rank 0 logs


def test_sensor_trained_demo_weights_match_their_recorded_sha256():
    """The committed sensor-trained demo model is the file the registry records (size and sha256, hashed now)."""
    from sr import weights

    status, detail = weights.verify("difiisr_demo_sensor", full=True)
    assert status == "ok", detail
