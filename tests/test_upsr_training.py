"""The trainer builds UPSR's own network (the Swin-UNet with the full-resolution RGB head, ``unet.arch: upsr``) and
trains it with the UPSR objective; the paper-scale config loads and its sampler agrees with its objective."""

from __future__ import annotations

import torch
from test_train import TINY_UNET, tiny_config

from sr.nn import UPSRUNetModelSwin
from sr.train.config import load_config
from sr.train.run_method import check_sampling
from sr.train.trainer import Trainer

TINY_UPSR = {**TINY_UNET, "arch": "upsr", "in_channels": 48, "out_channels": 3, "lq_size": 8, "num_feat": 16}


def test_the_trainer_trains_upsr_network_g_and_validates_through_the_sampler(tmp_path):
    """Two steps change the weights with a finite loss; the full-resolution output is unshuffled into the state for
    the loss (as the official MSE of the pixel-shuffled target) and by the diffusion when sampling."""
    model = {"input_scaling": "upsr", "schedule": "upsr_t5", "unet": TINY_UPSR}
    path = tiny_config(tmp_path, objective={"kind": "upsr"}, iterations=2, model=model, random_weights=True)
    trainer = Trainer(load_config(path), device="cpu")
    assert isinstance(trainer.model, UPSRUNetModelSwin) and trainer.diffusion.model_output_unshuffle == 4
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    logs = [trainer.train_step() for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(log["loss"])) for log in logs)
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert torch.isfinite(torch.tensor(trainer.validate()["psnr"]))


def test_upsr_paper_config_is_the_official_network_and_sampled_as_trained():
    cfg = load_config("upsr_paper")
    check_sampling(cfg)  # objective upsr, sampled as configs/methods/upsr.yaml: no mismatch
    assert cfg.model.unet["arch"] == "upsr" and cfg.objective["prior_method"] == "atd_real"
    assert cfg.data.batch_size * cfg.train.grad_accum == 32 and cfg.train.iterations == 200_000
    from sr.methods.resshift import UNET_PRESETS

    assert cfg.model.unet == UNET_PRESETS["upsr_x4"]  # the official network_g (test_upsr_method checks the preset)
