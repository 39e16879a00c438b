"""Access to the conformance kit in ``../shared/reference`` (skips the test when it is absent)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def ref_path(name: str) -> Path:
    """Path of a kit file; skips the calling test when the kit (or that file) is not there."""
    path = REFERENCE_DIR / name
    if not path.exists():
        pytest.skip(f"conformance kit file {path} not found (the kit lives in ../shared/reference)")
    return path


def load_pt(name: str) -> dict[str, torch.Tensor]:
    return torch.load(ref_path(name), map_location="cpu", weights_only=True)


def load_json(name: str) -> dict:
    return json.loads(ref_path(name).read_text())


def dense_state(stem: str) -> dict[str, torch.Tensor]:
    """``<stem>_state.pt`` with ``<stem>_dense_overrides.pt`` applied (README section 4.2)."""
    return {**load_pt(f"{stem}_state.pt"), **load_pt(f"{stem}_dense_overrides.pt")}


def build_small_unet(weights: str = "dense"):
    """The kit's reduced UNet with ``asbuilt`` or ``dense`` weights, in eval mode."""
    from sr.nn import UNetModelSwin

    net = UNetModelSwin(**load_json("unet_small_config.json")["params"])
    state = dense_state("unet_small") if weights == "dense" else load_pt("unet_small_state.pt")
    net.load_state_dict(state, strict=True)
    return net.eval()


def build_small_vq(weights: str = "dense"):
    """The kit's reduced VQ-f4 with ``asbuilt`` or ``dense`` weights, in eval mode."""
    from sr.nn import VQModelTorch

    vq = VQModelTorch(**load_json("vq_small_config.json")["params"])
    state = dense_state("vq_small") if weights == "dense" else load_pt("vq_small_state.pt")
    vq.load_state_dict(state, strict=True)
    return vq.eval()
