"""SegFormer (MiT backbone + all-MLP head) built through mmseg's registry, and its weights I/O.

Variants (``VARIANTS``): ``mit_b1`` is the paper's SegFormer-b1 (MiT-b1: embed dims 64/128/320/512,
2 blocks per stage, head channels 256); ``mit_b0`` the smaller official one; ``mit_tiny`` a narrow
MiT (embed dims 16/32/80/128, 1 block per stage, head channels 64) that the demo suite trains on CPU.

The model is mmseg's ``EncoderDecoder``, so its state-dict keys (``backbone.layers.*``,
``decode_head.*``) are those of mmseg's SegFormer checkpoints. Weights are read and written as plain
state dicts (tensors only) and loaded with ``torch.load(weights_only=True)`` (or safetensors): a
pickle is never executed. Infrared frames are replicated to three channels and normalised with the
ImageNet mean/std that mmseg's SegFormer configs use (``preprocess``).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sr.errors import ConfigError, UnknownNameError, UserError

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Variant:
    embed_dims: int
    num_layers: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    head_channels: int
    pretrained: str | None = None  # weights-registry name of the ImageNet backbone

    @property
    def stage_channels(self) -> list[int]:
        return [self.embed_dims * h for h in self.num_heads]


VARIANTS: dict[str, Variant] = {
    "mit_b0": Variant(32, (2, 2, 2, 2), (1, 2, 5, 8), 256, "mit_b0_imagenet"),
    "mit_b1": Variant(64, (2, 2, 2, 2), (1, 2, 5, 8), 256, "mit_b1_imagenet"),
    "mit_tiny": Variant(16, (1, 1, 1, 1), (1, 2, 5, 8), 64, None),
}


def model_config(
    variant: str,
    num_classes: int,
    *,
    drop_path_rate: float = 0.1,
    test_mode: str = "whole",
    crop_size: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
) -> dict[str, Any]:
    """The mmseg config dict of an ``EncoderDecoder`` SegFormer (BN instead of SyncBN, no preprocessor)."""
    if variant not in VARIANTS:
        raise UnknownNameError("SegFormer variant", variant, VARIANTS)
    if test_mode not in ("whole", "slide"):
        raise ConfigError(f"segmentation inference mode must be 'whole' or 'slide', got {test_mode!r}")
    v = VARIANTS[variant]
    test_cfg: dict[str, Any] = {"mode": test_mode}
    if test_mode == "slide":
        test_cfg.update(crop_size=tuple(int(c) for c in crop_size), stride=tuple(int(s) for s in stride))
    return dict(
        type="EncoderDecoder",
        data_preprocessor=None,
        backbone=dict(
            type="MixVisionTransformer",
            in_channels=3,
            embed_dims=v.embed_dims,
            num_stages=4,
            num_layers=list(v.num_layers),
            num_heads=list(v.num_heads),
            patch_sizes=[7, 3, 3, 3],
            sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3),
            mlp_ratio=4,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=drop_path_rate,
        ),
        decode_head=dict(
            type="SegformerHead",
            in_channels=v.stage_channels,
            in_index=[0, 1, 2, 3],
            channels=v.head_channels,
            dropout_ratio=0.1,
            num_classes=int(num_classes),
            norm_cfg=dict(type="BN", requires_grad=True),
            align_corners=False,
            loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        ),
        train_cfg=dict(),
        test_cfg=test_cfg,
    )


def build_segformer(variant: str, num_classes: int, **kwargs: Any) -> torch.nn.Module:
    """Build a randomly initialised SegFormer through mmseg's MODELS registry."""
    from downstream.segmentation.mmcv_shim import import_mmseg

    cfg = model_config(variant, num_classes, **kwargs)
    import_mmseg()
    from mmengine.config import ConfigDict
    from mmengine.logging import MMLogger
    from mmseg.registry import MODELS

    model = MODELS.build(ConfigDict(cfg))  # ConfigDict: mmseg reads test_cfg.mode as an attribute
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs one INFO paragraph per parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


# --------------------------------------------------------------------------------------------- input


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` float in [0, 1] (C = 1 or 3) -> normalised 3-channel input of the network."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected [B, 1|3, H, W] images, got {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    mean = images.new_tensor(MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(STD).view(1, 3, 1, 1)
    return (images * 255.0 - mean) / std


def train_logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits at 1/4 resolution for training (``images`` already preprocessed)."""
    return model.decode_head(model.extract_feat(images))


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, images: torch.Tensor, out_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Logits ``[B, K, H, W]`` of float [0, 1] images, by the model's whole/slide test mode."""
    x = preprocess(images)
    h, w = x.shape[-2:]
    metas = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)) for _ in range(x.shape[0])]
    logits = model.inference(x, metas)
    if out_size is not None and tuple(logits.shape[-2:]) != tuple(out_size):
        logits = F.interpolate(logits, size=tuple(out_size), mode="bilinear", align_corners=False)
    return logits


# ------------------------------------------------------------------------------------------- weights


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a plain state dict through the project's safe loader (safetensors or weights_only)."""
    from sr.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise UserError(f"segmentation weights file not found: {path}")
    try:
        obj = load_checkpoint(path)
    except UserError as exc:
        raise UserError(
            f"{exc} Checkpoints must hold tensors only (mmengine's full checkpoints hold pickled "
            "objects: re-save their 'state_dict' with torch.save)."
        ) from None
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj: Any, path: str | os.PathLike = "<state dict>") -> dict[str, torch.Tensor]:
    """Accept ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers and return the tensor mapping."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a mapping of parameter names to tensors")
    return OrderedDict(obj)


def convert_nvlabs_mit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an original NVlabs MiT checkpoint (``patch_embed1``, ``block1``...) to mmseg's.

    Checkpoints already in mmseg layout (``layers.*``) are returned unchanged. The ImageNet
    classifier (``head.*``) is dropped; ``q`` and ``kv`` projections are concatenated into
    ``attn.attn.in_proj_*``; MLP linear layers become 1x1 convolutions.
    """
    if not any(k.startswith(("patch_embed", "block", "norm")) for k in state):
        return OrderedDict(state)
    out: dict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        stage = key.split(".")[0]
        if key.startswith("head"):
            continue
        if key.startswith("patch_embed"):
            i = int(stage.replace("patch_embed", ""))
            out[key.replace(stage, f"layers.{i - 1}.0", 1).replace(".proj.", ".projection.")] = value
        elif key.startswith("block"):
            i = int(stage.replace("block", ""))
            new = key.replace(stage, f"layers.{i - 1}.1", 1)
            if ".attn.q." in key:
                out[new.replace(".attn.q.", ".attn.attn.in_proj_")] = torch.cat(
                    [value, state[key.replace(".attn.q.", ".attn.kv.")]], dim=0
                )
            elif ".attn.kv." in key:
                continue
            elif ".attn.proj." in key:
                out[new.replace(".attn.proj.", ".attn.attn.out_proj.")] = value
            elif ".mlp." in key:
                if key.endswith(("fc1.weight", "fc2.weight")):
                    value = value.reshape(*value.shape, 1, 1)
                new = new.replace(".mlp.", ".ffn.layers.").replace("fc1.", "0.").replace("dwconv.dwconv.", "1.")
                out[new.replace("fc2.", "4.")] = value
            else:
                out[new] = value
        elif key.startswith("norm"):
            i = int(stage.replace("norm", ""))
            out[key.replace(stage, f"layers.{i - 1}.2", 1)] = value
        else:
            out[key] = value
    return out


def load_backbone_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load ImageNet MiT weights into ``model.backbone`` (mmseg or NVlabs layout; strict on the backbone)."""
    state = load_state_dict_file(path)
    if any(k.startswith("backbone.") for k in state):
        state = OrderedDict((k[len("backbone.") :], v) for k, v in state.items() if k.startswith("backbone."))
    state = convert_nvlabs_mit(state)
    _load_strict(model.backbone, state, path, "MiT backbone")


def load_segformer_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a full SegFormer state dict (our trained files or mmseg's, wrappers accepted)."""
    state = load_state_dict_file(path)
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("data_preprocessor."))
    _load_strict(model, state, path, "SegFormer")


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path, what: str) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} with a different shape (e.g. {'; '.join(wrong[:3])})")
        raise UserError(
            f"{path}: does not fit the {what} ({'; '.join(parts)}); check the model variant and the number of classes"
        )
    module.load_state_dict(state, strict=True)


def save_state_dict(model_or_state: torch.nn.Module | dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write a plain state dict (tensors only, contiguous CPU copies) atomically."""
    from sr.atomic import atomic_path

    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else model_or_state
    state = OrderedDict((k, v.detach().cpu().contiguous().clone()) for k, v in state.items())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp))
        else:
            torch.save(state, tmp)
    return path
