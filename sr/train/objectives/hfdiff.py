"""HF-Diff (arXiv 2411.13548): SinSR + a high-frequency perceptual loss + JS divergence in DINOv2 space.

Total = L_distill + L_inv (learn x_T) + L_con (ground-truth consistency) + eta_1 L_HF + eta_2 L_JS
(eq. 9; eta_1 = 0.2, eta_2 = 0.15). L_HF and L_JS compare the student's output on x_hat_T (the GT
path, Algorithm 1 lines 9-12), decoded to an image, with the HR image:

* L_HF = MSE(H(SR), H(HR)), H = the invertible-network feature extractor of Algorithm 2 (a shallow
  residual block 3 -> N channels, then K affine-coupling invertible modules of eq. 5; the output of the
  K-th module). Its ImageNet pre-training (classification through CNN + FC heads) is a separate
  command: ``python -m sr.train.inn_pretrain --data <ImageFolder root> --out inn.safetensors``.
* L_JS = Jensen-Shannon divergence between softmax(e/tau) of the DINOv2 (ViT-S/14, timm layout) CLS
  embeddings of SR and HR — each embedding read as a distribution over its dimensions (the paper
  does not say how embeddings become distributions; this is our reading).
Weights: ``inn_weights`` (file or registry name) and the registry entry ``dinov2_vits14_timm``;
``random_weights`` builds both untrained (flagged). The public code computes the INN term on VQ
latents (UPSTREAM_FACTS 5); we follow the paper (decoded images).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sr import weights as weights_registry
from sr.checkpoint import load_into
from sr.train.objectives.base import ObjectiveContext, mse, register
from sr.train.objectives.sinsr import SinSRObjective
from sr.vocab import FLAG_RANDOM_WEIGHTS


class _TwoLayerCNN(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cin, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 3, padding=1)
        )

    def forward(self, x):
        return self.net(x)


class InvertibleModule(nn.Module):
    """Eq. 5: psi[n:] += I1(psi[:n]); psi[:n] = psi[:n] * exp(I2(psi[n:])) + I3(psi[n:])."""

    def __init__(self, channels: int, split: int | None = None):
        super().__init__()
        self.n = split or channels // 2
        m = channels - self.n
        self.i1, self.i2, self.i3 = _TwoLayerCNN(self.n, m), _TwoLayerCNN(m, self.n), _TwoLayerCNN(m, self.n)

    def forward(self, x):
        a, b = x[:, : self.n], x[:, self.n :]
        b = b + self.i1(a)
        a = a * torch.exp(torch.tanh(self.i2(b))) + self.i3(b)  # tanh bounds the scale (stability)
        return torch.cat([a, b], dim=1)


class INNFeatureExtractor(nn.Module):
    """RB (3 -> N) then K invertible modules; returns z_K (same spatial size as the input)."""

    def __init__(self, channels: int = 128, modules: int = 3):
        super().__init__()
        self.rb_in = nn.Conv2d(3, channels, 3, padding=1)
        self.rb = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.blocks = nn.ModuleList([InvertibleModule(channels) for _ in range(modules)])

    def forward(self, x):
        h = self.rb_in(x)
        h = h + self.rb(h)
        for blk in self.blocks:
            h = blk(h)
        return h


def js_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    p, q = F.softmax(p_logits.float(), dim=-1), F.softmax(q_logits.float(), dim=-1)
    m = 0.5 * (p + q)
    kl = lambda a, b: (a * (torch.log(a + 1e-12) - torch.log(b + 1e-12))).sum(-1)  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def build_dino(weights_dir=None, random_weights: bool = False, img_size: int = 224) -> nn.Module:
    import timm

    net = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=img_size, num_classes=0)
    if not random_weights:
        load_into(net, weights_registry.resolve("dinov2_vits14_timm", weights_dir), "DINOv2 ViT-S/14 (timm)")
    return net.eval().requires_grad_(False)


@register("hfdiff")
class HFDiffObjective(SinSRObjective):
    def __init__(
        self,
        ctx: ObjectiveContext,
        eta_hf: float = 0.2,
        eta_js: float = 0.15,
        inn_weights: str | None = None,
        inn_channels: int = 128,
        inn_modules: int = 3,
        dino_size: int = 224,
        js_tau: float = 1.0,
        **sinsr: Any,
    ):
        super().__init__(ctx, **sinsr)
        self.eta_hf, self.eta_js = float(eta_hf), float(eta_js)
        self.dino_size, self.js_tau = int(dino_size), float(js_tau)
        inn = INNFeatureExtractor(inn_channels, inn_modules)
        self._random = ctx.random_weights
        if inn_weights:
            load_into(
                inn,
                weights_registry.resolve_weights(inn_weights, ctx.weights_dir, what="objective.inn_weights"),
                "INN feature extractor",
                keys=("extractor", "state_dict"),
            )
        elif not ctx.random_weights:
            raise ValueError("hfdiff needs inn_weights (python -m sr.train.inn_pretrain) or random_weights")
        self.inn = [inn.to(ctx.device).eval().requires_grad_(False)]
        self.dino = [build_dino(ctx.weights_dir, ctx.random_weights, self.dino_size).to(ctx.device)]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @property
    def flags(self):
        return (FLAG_RANDOM_WEIGHTS,) if self._random else ()

    def _dino(self, img01):
        x = F.interpolate(img01, size=(self.dino_size, self.dino_size), mode="bilinear", align_corners=False)
        return self.dino[0]((x - self.mean.to(x.device)) / self.std.to(x.device))

    def forward(self, batch, step):
        loss, logs, gt_pred, _ = self.student_terms(batch, step)
        if gt_pred is None:
            raise ValueError("hfdiff needs finetune_use_gt > 0 (its HF and JS terms act on that path)")
        sr = self.decode(gt_pred) * 0.5 + 0.5
        hr = batch["hr"] * 0.5 + 0.5
        l_hf = mse(self.inn[0](sr), self.inn[0](hr).detach())
        with torch.no_grad():
            e_hr = self._dino(hr)
        l_js = js_divergence(self._dino(sr) / self.js_tau, e_hr / self.js_tau).mean()
        logs.update(hf=float(l_hf.detach()), js=float(l_js.detach()))
        return loss + self.eta_hf * l_hf + self.eta_js * l_js, logs
