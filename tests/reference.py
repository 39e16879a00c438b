"""Access to the conformance kit in ``../shared/reference`` (skips the test when it is absent, fails it in CI)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
from conftest import shared_path


def ref_path(name: str) -> Path:
    """Path of a kit file; skips the calling test when the kit (or that file) is absent (fails it in CI)."""
    return shared_path("reference", name, what="conformance kit file")


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


#: the kit's tie rule (README section 5): a code index whose float64 margin between the best and the
#: second-best squared distance is at most this may legitimately flip under other CPU kernels / threads
TIE_MARGIN = 1e-5


@contextmanager
def golden_ties(vq, golden_indices: torch.Tensor, margin: torch.Tensor):
    """Within the block, ``vq``'s quantiser must pick the golden code wherever the kit's margin is safe
    (asserted at every call), and takes the golden code at the tie-prone positions.

    This is the kit's rule for anything compared through the quantiser: a whole pipeline is checked
    end to end with our own latent, and a near-tie that another CPU's kernels resolve the other way
    cannot make the comparison fail (nor hide a wrong code at a safe position)."""
    quantizer = vq.quantize
    own = quantizer.indices
    safe = margin > TIE_MARGIN

    def indices(z: torch.Tensor) -> torch.Tensor:
        idx = own(z)
        assert idx.shape == golden_indices.shape, (idx.shape, golden_indices.shape)
        assert torch.equal(idx[safe], golden_indices[safe]), "a code index differs at a safe-margin position"
        return torch.where(safe, idx, golden_indices)

    quantizer.indices = indices  # instance attribute: shadows the method for this block only
    try:
        yield
    finally:
        del quantizer.indices
