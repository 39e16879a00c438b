"""Perceptual guidance losses of DifIISR (paper eq. 12) and the supplementary Table 3 variants.

Inputs are images in [0, 1], [B, C, H, W] with C in {1, 3} (one channel is replicated); every
loss returns one value per sample ([B]) and is differentiable in its first argument. The feature
networks are frozen (``requires_grad=False``, eval mode) but gradients flow through them to the image.

Pretrained weights come from the project's weights registry (``configs/weights.yaml``) through the
one safe loader (:mod:`sr.checkpoint`); nothing is downloaded. ``random_weights=True`` builds the
networks untrained instead: only for tests and CPU demos, and every loss built that way carries the
flag ``random_weights`` (see :attr:`flags`) so results can be labelled.

``vgg``   MSE between VGG-16 feature maps at one layer (default ``relu2_2``; ImageNet normalisation).
``sam``   MSE between SAM outputs for the HR and SR image (the paper's L_seg). What is compared
          (``target``):
          * ``masks`` (default): the mask decoder's *low-resolution mask logits* (256x256 per prompt)
            for a fixed ``points_per_side`` x ``points_per_side`` grid of single foreground point
            prompts, one mask per point (``multimask_output=False``). This is the closest
            differentiable stand-in for "the masks SAM segments": thresholded binary masks have zero
            gradient almost everywhere, whereas the logits carry the same information (their sign is
            the mask) and stay smooth; a fixed grid (as in SAM's automatic mask generator) makes the
            prompt set identical for HR and SR so the masks are comparable one to one.
          * ``embedding``: the image encoder's 64x64x256 embedding (cheaper: no decoder; a
            feature-matching loss rather than a mask loss).
          The image is resized (longest side 1024, bilinear, differentiable), normalised with SAM's
          pixel mean/std and zero-padded to 1024x1024 as ``Sam.preprocess`` does.
``lpips`` LPIPS v0.1 with a VGG-16 trunk (``trunk="alex"``: AlexNet, the quality metric of
          :mod:`downstream.metrics`): unit-normalised features of the five ReLU stages, squared
          differences weighted per channel by LPIPS' linear layers (file ``pyiqa_lpips_vgg`` /
          ``pyiqa_lpips_alex``), spatially averaged and summed over stages. With ``random_weights``
          the linear weights are all ones (plain normalised-feature distance).
``edge``  MSE between Sobel gradient-magnitude maps (supplementary Table 3, "Edge").
"""

from __future__ import annotations

import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from sr import weights as weights_registry
from sr.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, load_into
from sr.vocab import FLAG_RANDOM_WEIGHTS

VGG_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
SAM_WEIGHTS = {"vit_b": "sam_vit_b", "vit_l": "sam_vit_l", "vit_h": "sam_vit_h"}


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _up(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (float64 stays float64, for gradient checks)."""
    return x if x.dtype == torch.float64 else x.float()


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class _Frozen(nn.Module):
    """Base: keeps frozen sub-networks in eval mode whatever ``train()`` is called with."""

    random_weights: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        return (FLAG_RANDOM_WEIGHTS,) if self.random_weights else ()

    def train(self, mode: bool = True):  # noqa: D102 - frozen networks stay in eval mode
        return super().train(False)


def build_vgg16_features(
    weights_dir: str | os.PathLike | None = None, random_weights: bool = False, last_index: int = 29
) -> nn.Sequential:
    """torchvision VGG-16 ``features[: last_index + 1]``, ImageNet weights from the registry."""
    from torchvision.models import vgg16

    net = vgg16(weights=None)
    if not random_weights:
        load_into(net, weights_registry.resolve("torchvision_vgg16", weights_dir), "torchvision vgg16")
    return _freeze(net.features[: last_index + 1])


def build_alexnet_features(
    weights_dir: str | os.PathLike | None = None, random_weights: bool = False, last_index: int = 11
) -> nn.Sequential:
    """torchvision AlexNet ``features[: last_index + 1]``, ImageNet weights from the registry."""
    from torchvision.models import alexnet

    net = alexnet(weights=None)
    if not random_weights:
        load_into(net, weights_registry.resolve("torchvision_alexnet", weights_dir), "torchvision alexnet")
    return _freeze(net.features[: last_index + 1])


class VGGLoss(_Frozen):
    def __init__(self, layer: str = "relu2_2", weights_dir=None, random_weights: bool = False):
        super().__init__()
        if layer not in VGG_LAYERS:
            raise ValueError(f"unknown VGG-16 layer {layer!r}; choose from {sorted(VGG_LAYERS)}")
        self.layer, self.random_weights = layer, bool(random_weights)
        self.features = build_vgg16_features(weights_dir, random_weights, VGG_LAYERS[layer])
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self.features((_rgb(pred) - self.mean) / self.std)
        ft = self.features((_rgb(target) - self.mean) / self.std)
        return _per_sample((fp - ft) ** 2)


class LPIPSLoss(_Frozen):
    """LPIPS (VGG or AlexNet trunk) as a differentiable loss; see the module docstring."""

    #: trunk -> (feature builder, last index of each ReLU stage, channels per stage, linear-layer weights entry)
    TRUNKS = {
        "vgg": (build_vgg16_features, (3, 8, 15, 22, 29), (64, 128, 256, 512, 512), "pyiqa_lpips_vgg"),
        "alex": (build_alexnet_features, (1, 4, 7, 9, 11), (64, 192, 384, 256, 256), "pyiqa_lpips_alex"),
    }

    def __init__(self, weights_dir=None, random_weights: bool = False, trunk: str = "vgg"):
        super().__init__()
        if trunk not in self.TRUNKS:
            raise ValueError(f"unknown LPIPS trunk {trunk!r}; choose from {sorted(self.TRUNKS)}")
        build, self._stage_ends, channels, lin_entry = self.TRUNKS[trunk]
        self.random_weights = bool(random_weights)
        self.features = build(weights_dir, random_weights, self._stage_ends[-1])
        lin = [torch.ones(c) for c in channels]
        if not random_weights:
            path = weights_registry.resolve(lin_entry, weights_dir)
            state = extract_state_dict(load_checkpoint(path))
            found = {}
            for key, value in state.items():
                m = re.fullmatch(r"(?:.*\.)?lin(\d)\.model\.1\.weight", key)
                if m:
                    found[int(m.group(1))] = value.reshape(-1).float()
            if sorted(found) != list(range(5)):
                raise CheckpointError(
                    f"{path}: expected LPIPS linear layers lin0..lin4.model.1.weight, found {sorted(state)[:10]}"
                )
            lin = [found[i] for i in range(5)]
        for i, w in enumerate(lin):
            self.register_buffer(f"lin{i}", w.view(1, -1, 1, 1), persistent=False)
        # LPIPS' ScalingLayer (inputs in [-1, 1])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (_rgb(x) * 2 - 1 - self.shift) / self.scale
        outs, start = [], 0
        for end in self._stage_ends:
            h = self.features[start : end + 1](h)
            outs.append(h)
            start = end + 1
        return outs

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = 0
        for i, (a, b) in enumerate(zip(self._stages(pred), self._stages(target))):
            a = a / (a.pow(2).sum(dim=1, keepdim=True) + 1e-10).sqrt()
            b = b / (b.pow(2).sum(dim=1, keepdim=True) + 1e-10).sqrt()
            total = total + ((a - b) ** 2 * getattr(self, f"lin{i}")).sum(dim=1).flatten(1).mean(dim=1)
        return total


class SobelEdgeLoss(nn.Module):
    """MSE between Sobel gradient magnitudes (per channel)."""

    flags: tuple[str, ...] = ()

    def __init__(self):
        super().__init__()
        kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        self.register_buffer("kernel", torch.stack([kx, kx.t()])[:, None], persistent=False)

    def edges(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = _up(x)
        g = F.conv2d(F.pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype))
        return (g.pow(2).sum(dim=1) + 1e-6).sqrt().view(b, c, h, w)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _per_sample((self.edges(pred) - self.edges(target)) ** 2)


def build_sam(model_type: str = "vit_b", weights_dir=None, random_weights: bool = False) -> nn.Module:
    """A frozen SAM from ``segment_anything``; weights through the safe loader (never torch.load)."""
    from segment_anything import sam_model_registry

    if model_type == "tiny_random":  # test-only: a 2-block ViT at 256 px, always random
        from functools import partial

        from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

        sam = Sam(
            image_encoder=ImageEncoderViT(
                img_size=256,
                patch_size=16,
                embed_dim=64,
                depth=2,
                num_heads=2,
                norm_layer=partial(nn.LayerNorm, eps=1e-6),
                out_chans=256,
                qkv_bias=True,
                use_rel_pos=True,
                window_size=4,
                global_attn_indexes=(1,),
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=256, image_embedding_size=(16, 16), input_image_size=(256, 256), mask_in_chans=16
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=256, num_heads=8),
                transformer_dim=256,
                iou_head_depth=1,
                iou_head_hidden_dim=32,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
        return _freeze(sam)
    if model_type not in SAM_WEIGHTS:
        raise ValueError(
            f"unknown SAM model type {model_type!r}; choose from {sorted(SAM_WEIGHTS)} (or 'tiny_random' for tests)"
        )
    sam = sam_model_registry[model_type](checkpoint=None)
    if not random_weights:
        load_into(sam, weights_registry.resolve(SAM_WEIGHTS[model_type], weights_dir), f"SAM {model_type}")
    return _freeze(sam)


class SAMLoss(_Frozen):
    """MSE between SAM mask logits (or image embeddings) of SR and HR; see the module docstring."""

    def __init__(
        self,
        model_type: str = "vit_b",
        target: str = "masks",
        points_per_side: int = 4,
        weights_dir=None,
        random_weights: bool = False,
    ):
        super().__init__()
        if target not in ("masks", "embedding"):
            raise ValueError(f"SAM target must be 'masks' or 'embedding', got {target!r}")
        self.target, self.points_per_side = target, int(points_per_side)
        self.random_weights = bool(random_weights) or model_type == "tiny_random"
        self.sam = build_sam(model_type, weights_dir, random_weights)
        self.size = self.sam.image_encoder.img_size

    def _preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        s = self.size / max(h, w)
        nh, nw = int(h * s + 0.5), int(w * s + 0.5)
        x = F.interpolate(_rgb(x).float() * 255, size=(nh, nw), mode="bilinear", align_corners=False)
        x = (x - self.sam.pixel_mean) / self.sam.pixel_std
        return F.pad(x, (0, self.size - nw, 0, self.size - nh)), (nh, nw)

    def _points(self, nh: int, nw: int, device) -> torch.Tensor:
        n = self.points_per_side
        offs = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
        yy, xx = torch.meshgrid(offs * nh, offs * nw, indexing="ij")
        return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)[:, None, :]  # (P, 1, 2) as (x, y)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        img, (nh, nw) = self._preprocess(x)
        emb = self.sam.image_encoder(img)
        if self.target == "embedding":
            return emb
        coords = self._points(nh, nw, x.device)
        labels = torch.ones(coords.shape[:2], device=x.device, dtype=torch.int64)
        sparse, dense = self.sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        pe = self.sam.prompt_encoder.get_dense_pe()
        masks = []
        for i in range(emb.shape[0]):
            low_res, _ = self.sam.mask_decoder(
                image_embeddings=emb[i : i + 1],
                image_pe=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            masks.append(low_res[:, 0])
        return torch.stack(masks)  # (B, P, 256, 256)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t = self.outputs(target)
        return _per_sample((self.outputs(pred) - t) ** 2)
