"""sr.guidance: loss properties, gradient injection against finite differences, feature networks
built with random weights (flagged) since no pretrained VGG/SAM files exist offline."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr.diffusion import DIFIISR_T15, ResShiftDiffusion
from sr.errors import MissingWeightsError
from sr.guidance import (
    FFTLoss,
    Guidance,
    GuidanceLoss,
    LPIPSLoss,
    SAMLoss,
    SobelEdgeLoss,
    SSIMLoss,
    VGGLoss,
    guidance_gradient,
    injection_scale,
    ssim,
)


def _img(seed, b=2, c=1, h=32, w=32, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, c, h // 4, w // 4, generator=g, dtype=dtype)
    return (
        F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False) * 0.8
        + 0.1
        + 0.05 * torch.rand(b, c, h, w, generator=g, dtype=dtype)
    ).clamp(0, 1)


def test_fft_loss_zero_for_identical_images():
    x = _img(0)
    assert torch.all(FFTLoss()(x, x) == 0)
    assert torch.all(FFTLoss(intensity_norm="none")(x, x) == 0)


@pytest.mark.parametrize("a", [0.25, 0.5, 3.0])
def test_fft_loss_invariant_to_global_intensity_scale(a):
    x, y = _img(1), _img(2)
    loss = FFTLoss()
    assert torch.allclose(loss(a * x, y), loss(x, y), rtol=1e-5, atol=1e-7)
    assert loss(a * x, x).abs().max().item() < 1e-6


def test_fft_loss_detects_blur_and_is_differentiable():
    x = _img(3, dtype=torch.float64)
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1).requires_grad_()
    value = FFTLoss()(blurred, x)
    assert torch.all(value > 1e-3)
    value.sum().backward()
    assert torch.isfinite(blurred.grad).all() and blurred.grad.abs().sum() > 0


def test_ssim_mse_edge_basic():
    x, y = _img(4), _img(5)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert torch.all(SSIMLoss()(x, y) > 0)
    assert torch.all(SobelEdgeLoss()(x, x) == 0) and torch.all(SobelEdgeLoss()(x, y) > 0)


class _TinyDenoiser(nn.Module):
    """A small smooth network standing in for the UNet (x0 prediction from the scaled state)."""

    def __init__(self, ch=16):
        super().__init__()
        self.a = nn.Conv2d(ch, 8, 3, padding=1)
        self.b = nn.Conv2d(8, ch, 3, padding=1)

    def forward(self, x, t, lq=None):
        return x + self.b(torch.tanh(self.a(x))) + 0.01 * t.view(-1, 1, 1, 1)


def _setup(seed=0):
    torch.manual_seed(seed)
    diffusion = ResShiftDiffusion.from_config(DIFIISR_T15)
    model = _TinyDenoiser().double()
    hr = _img(seed + 10, b=2, c=1, h=16, w=16, dtype=torch.float64) * 2 - 1
    z0 = F.pixel_unshuffle(hr, 4)  # pixel-space "first stage": (2, 16, 4, 4)
    y = z0 + 0.1 * torch.randn_like(z0)
    t = torch.tensor([3, 14])
    x_t = diffusion.q_sample(z0, y, t, torch.randn_like(z0))
    return diffusion, model, hr, x_t, t


def test_guidance_gradient_matches_finite_differences():
    diffusion, model, hr, x_t, t = _setup()
    loss = GuidanceLoss([{"kind": "fft"}, {"kind": "edge", "weight": 0.5}, {"kind": "ssim", "weight": 0.3}])
    target = hr * 0.5 + 0.5

    def guidance_of(x):
        pred = model(diffusion.scale_input(x, t), t)
        return loss(F.pixel_shuffle(pred, 4) * 0.5 + 0.5, target)

    x = x_t.clone().requires_grad_()
    pred = model(diffusion.scale_input(x, t), t)
    grad = guidance_gradient(lambda p: loss(F.pixel_shuffle(p, 4) * 0.5 + 0.5, target), x, pred)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, x_t.numel(), (12,), generator=gen)
    h = 1e-6
    for i in idx.tolist():
        e = torch.zeros_like(x_t).view(-1)
        e[i] = h
        e = e.view_as(x_t)
        with torch.no_grad():
            fd = (guidance_of(x_t + e).sum() - guidance_of(x_t - e).sum()) / (2 * h)
        assert grad.view(-1)[i].item() == pytest.approx(fd.item(), rel=1e-4, abs=1e-9)


def test_inject_corrects_prediction_with_schedule_factor_and_second_order():
    diffusion, model, hr, x_t, t = _setup(1)
    loss = GuidanceLoss([{"kind": "fft"}])
    decode = lambda p: F.pixel_shuffle(p, 4)  # noqa: E731
    x = x_t.clone().requires_grad_()
    pred = model(diffusion.scale_input(x, t), t)
    res = Guidance(loss, rho=0.5, schedule="eps")(diffusion, x, t, pred, decode, hr)
    grad = guidance_gradient(lambda p: loss(decode(p) * 0.5 + 0.5, hr * 0.5 + 0.5), x, pred)
    eta = torch.tensor(diffusion.schedule.etas)[t].view(-1, 1, 1, 1)
    c = injection_scale(diffusion, t, pred.shape)
    assert torch.allclose(c.double(), (4.0 * eta / (1 - eta)).expand_as(c), rtol=1e-5)
    # default form "target": the loss compares pred + rho c grad with x0, i.e. pred with x0 - rho c grad
    assert torch.allclose(res.pred_x0, pred + 0.5 * c * grad, rtol=1e-10, atol=1e-12)
    lit = Guidance(loss, rho=0.5, schedule="eps", form="literal")(diffusion, x, t, pred, decode, hr)
    assert torch.allclose(lit.pred_x0, pred - 0.5 * c * grad, rtol=1e-10, atol=1e-12)
    assert float(res.extra_loss) == 0.0
    assert c[1].max().item() == pytest.approx(4.0 * 0.9801 / (1 - 0.9801), rel=1e-3)
    # first order: the gradient is a constant of the parameters; second order differentiates it
    grads = {}
    for second in (False, True):
        model.zero_grad()
        x = x_t.clone().requires_grad_()
        pred = model(diffusion.scale_input(x, t), t)
        out = Guidance(loss, rho=0.5, second_order=second)(diffusion, x, t, pred, decode, hr)
        out.pred_x0.pow(2).mean().backward()
        grads[second] = model.a.weight.grad.clone()
    assert not torch.allclose(grads[False], grads[True])


def test_inject_wrt_x0_is_a_reweighted_sum_mode():
    """``wrt: x0`` takes the gradient at the prediction itself (no back-propagation through the
    network, so x_t needs no grad). In the target form its parameter gradient then equals, exactly,
    that of the x0-MSE plus sum-mode guidance with weight 2 rho c_t / N per sample (N = elements of
    the batch), derived by hand in docs/guidance.md."""
    diffusion, model, hr, x_t, t = _setup(4)
    z0 = F.pixel_unshuffle(hr, 4)
    loss = GuidanceLoss([{"kind": "fft"}])
    decode = lambda p: F.pixel_shuffle(p, 4)  # noqa: E731
    target = hr * 0.5 + 0.5
    rho = 3.0

    def param_grad(build):
        model.zero_grad()
        pred = model(diffusion.scale_input(x_t, t), t)
        build(pred).backward()
        return [p.grad.clone() for p in model.parameters()]

    def inject(pred):
        res = Guidance(loss, rho=rho, schedule="x0", wrt="x0")(diffusion, x_t, t, pred, decode, hr)
        # the correction is rho * grad_{x0_hat} L_g, the plain autograd gradient at the prediction
        g = torch.autograd.grad(loss(decode(pred) * 0.5 + 0.5, target).sum(), pred, retain_graph=True)[0]
        assert torch.allclose(res.pred_x0 - pred, rho * g, rtol=1e-12, atol=1e-15)
        return F.mse_loss(res.pred_x0, z0)

    def summed(pred):
        return F.mse_loss(pred, z0) + 2 * rho / pred.numel() * loss(decode(pred) * 0.5 + 0.5, target).sum()

    for a, b in zip(param_grad(inject), param_grad(summed)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-14)
    with pytest.raises(ValueError, match="wrt"):
        Guidance(loss, wrt="x_T")


class _LinearNet(nn.Module):
    """A tiny linear "network": x0_hat = W x (1x1 conv, W near identity) + b."""

    def __init__(self, ch=16):
        super().__init__()
        self.w = nn.Conv2d(ch, ch, 1)
        with torch.no_grad():
            self.w.weight.copy_(torch.eye(ch).view(ch, ch, 1, 1) + 0.05 * torch.randn(ch, ch, 1, 1))
            self.w.bias.zero_()

    def forward(self, x, t, lq=None):
        return self.w(x)


@pytest.mark.parametrize("schedule,wrt", [("eps", "x_t"), ("x0", "x_t"), ("x0", "x0")])
def test_guided_step_lowers_the_uncorrected_outputs_guidance_loss(schedule, wrt):
    """One SGD step with inject guidance (default form) must leave the network's own output (what
    inference uses: no HR, so no correction there) with a lower guidance loss than an unguided step
    from the same init; the literal form of Algorithm 1 moves it the other way (module doc)."""
    diffusion, _, hr, x_t, t = _setup(3)
    z0 = F.pixel_unshuffle(hr, 4)
    decode = lambda p: F.pixel_shuffle(p, 4)  # noqa: E731
    loss = GuidanceLoss([{"kind": "fft"}])
    target = hr * 0.5 + 0.5
    torch.manual_seed(0)
    init = _LinearNet().double().state_dict()
    rho = {"eps": 2.0, "x0": 200.0}[schedule]

    def after_one_step(form):
        net = _LinearNet().double()
        net.load_state_dict(init)
        x = x_t.clone().requires_grad_()
        pred = net(diffusion.scale_input(x, t), t)
        if form is not None:
            pred = Guidance(loss, rho=rho, schedule=schedule, form=form, wrt=wrt)(
                diffusion, x, t, pred, decode, hr
            ).pred_x0
        F.mse_loss(pred, z0).backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.05 * p.grad
            out = net(diffusion.scale_input(x_t, t), t)
            return float(loss(decode(out) * 0.5 + 0.5, target).sum())

    none, guided, literal = after_one_step(None), after_one_step("target"), after_one_step("literal")
    assert guided < none < literal
    with pytest.raises(ValueError, match="form"):
        Guidance(loss, form="bogus")


def test_sum_mode_adds_loss_without_correcting():
    diffusion, model, hr, x_t, t = _setup(2)
    loss = GuidanceLoss([{"kind": "fft", "mode": "sum", "weight": 2.0}])
    decode = lambda p: F.pixel_shuffle(p, 4)  # noqa: E731
    pred = model(diffusion.scale_input(x_t, t), t)
    res = Guidance(loss)(diffusion, x_t, t, pred, decode, hr)
    assert res.pred_x0 is pred
    direct = 2.0 * FFTLoss()(decode(pred) * 0.5 + 0.5, hr * 0.5 + 0.5).mean()
    assert float(res.extra_loss.detach()) == pytest.approx(float(direct.detach()))
    assert res.extra_loss.requires_grad


def test_vgg_lpips_need_weights_or_explicit_random(tmp_path):
    with pytest.raises(MissingWeightsError, match="vgg16"):
        VGGLoss(weights_dir=tmp_path)
    x, y = _img(6, c=1), _img(7, c=1)
    vgg = VGGLoss(layer="relu2_2", random_weights=True)
    assert vgg.flags == ("random_weights",)
    assert torch.all(vgg(x, x) == 0) and torch.all(vgg(x, y) > 0)
    lp = LPIPSLoss(random_weights=True)
    assert torch.all(lp(x, x).abs() < 1e-6) and torch.all(lp(x, y) > 0)
    g = GuidanceLoss([{"kind": "fft"}, {"kind": "vgg"}], random_weights=True)
    assert g.flags == ("random_weights",)


def test_sam_mask_loss_is_differentiable_tiny_random():
    sam = SAMLoss(model_type="tiny_random", points_per_side=2)
    assert sam.flags == ("random_weights",)
    x, y = _img(8, b=1, h=40, w=48), _img(9, b=1, h=40, w=48)
    assert sam.outputs(x).shape == (1, 4, 64, 64)  # 4 prompts, low-res logits (img 256 -> 64)
    assert float(sam(x, x)) == pytest.approx(0.0, abs=1e-10)
    xr = x.clone().requires_grad_()
    val = sam(xr, y)
    val.sum().backward()
    assert float(val.detach()) > 0 and xr.grad.abs().sum() > 0
    emb = SAMLoss(model_type="tiny_random", target="embedding")
    assert emb.outputs(x).shape == (1, 256, 16, 16)


def test_sam_official_types_need_weights(tmp_path):
    with pytest.raises(MissingWeightsError, match="sam_vit_b"):
        SAMLoss(model_type="vit_b", weights_dir=tmp_path)
