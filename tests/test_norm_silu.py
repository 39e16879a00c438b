"""The activation after every GroupNorm of the VQ autoencoder and the UNet runs in place without autograd:
outputs bit-equal to the out-of-place code, training gradients bit-equal, and the GroupNorm output is reused
(no full-size temporary)."""

from __future__ import annotations

import copy

import pytest
import torch
from test_perf import small_nets
from torch import nn

from sr.nn import vq as vq_module
from sr.nn.layers import NormSiLU


def _out_of_place(monkeypatch) -> None:
    """The code before the change: ``x * sigmoid(x)`` in the autoencoder, ``nn.SiLU`` in the UNet."""
    monkeypatch.setattr(vq_module, "_swish", lambda x: x * torch.sigmoid(x))
    monkeypatch.setattr(NormSiLU, "forward", nn.SiLU.forward)


def _inputs():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    x = torch.randn(2, 3, 16, 16, generator=g)
    return image, x, torch.tensor([14, 3]), torch.rand(2, 3, 16, 16, generator=g) * 2 - 1


def _forward(unet, vq, image, x, t, lq):
    return vq.decode(vq.encode(image)), unet(x, t, lq=lq)


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_inference_outputs_bit_equal_to_the_out_of_place_code(monkeypatch, mode):
    unet, vq = small_nets()
    args = _inputs()
    context = torch.inference_mode if mode == "inference_mode" else torch.no_grad
    with context():
        new = _forward(unet, vq, *args)
    with monkeypatch.context() as m:
        _out_of_place(m)
        with context():
            old = _forward(unet, vq, *args)
    assert all(torch.equal(a, b) for a, b in zip(new, old, strict=True))


def test_training_gradients_bit_equal_to_the_out_of_place_code(monkeypatch):
    unet, vq = (copy.deepcopy(n).train().requires_grad_(True) for n in small_nets())
    image, x, t, lq = _inputs()

    def grads():
        unet.zero_grad(set_to_none=True)
        vq.zero_grad(set_to_none=True)
        image_in = image.clone().requires_grad_(True)
        a, b = _forward(unet, vq, image_in, x, t, lq)
        ((a**2).mean() + (b**2).mean()).backward()
        return [image_in.grad] + [p.grad for p in (*unet.parameters(), *vq.parameters())]

    new = grads()
    with monkeypatch.context() as m:
        _out_of_place(m)
        old = grads()
    assert len(new) == len(old) and sum(g is not None for g in new) > 0.9 * len(new)  # codebook: straight-through
    assert all(a is b is None or torch.equal(a, b) for a, b in zip(new, old, strict=True))


def test_the_activation_reuses_the_norm_output_only_without_autograd():
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        y = x.clone()
        assert vq_module._swish(y) is y and torch.equal(y, x * torch.sigmoid(x))
        z = x.clone()
        assert NormSiLU()(z).data_ptr() == z.data_ptr()
    leaf = x.clone().requires_grad_(True)
    out = vq_module._swish(leaf)
    assert out is not leaf and torch.equal(leaf, x)
    assert NormSiLU()(leaf).data_ptr() != leaf.data_ptr()
