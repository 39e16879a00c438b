"""``UNetModelSwin``: the denoiser of ResShift v1/v2/v3, SinSR, DifIISR and HF-Diff, plus UPSR's variant.

State-dict layout (key names, order, shapes, the 24 persistent buffers) and numerics match the
official ``models/unet.py`` of DifIISR/SinSR (conference-era ResShift) and ResShift HEAD's
journal-era class, so their released checkpoints load with ``strict=True``. Constructors take the
keyword arguments of the official YAML configs; flags that only affect upstream bookkeeping
(``use_fp16``, ``dims``, ``conv_resample`` ...) are accepted.

The network is called as ``net(x, t, lq=lq)``: ``x`` the (already input-scaled) diffusion state,
``t`` integer step indices, ``lq`` the conditioning image concatenated on channels.
:class:`UPSRUNetModelSwin` is UPSR's ``basicsr/archs/swin_unet_arch.py`` layout: a 48-channel
PixelUnshuffled state, 96 conditioning channels and a nearest-upsampling head producing full-size RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sr.nn.layers import NormSiLU, normalization, timestep_embedding, zero_module
from sr.nn.swin import SwinLayer


class ResBlock(nn.Module):
    """GN-SiLU-conv, FiLM from the time embedding (scale-shift), GN-SiLU-dropout-conv, skip."""

    def __init__(
        self, channels: int, emb_channels: int, dropout: float, out_channels: int, use_scale_shift_norm: bool = True
    ):
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            normalization(channels), NormSiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels)
        )
        self.out_layers = nn.Sequential(
            normalization(out_channels),
            NormSiLU(),
            nn.Dropout(dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """3x3 convolution with stride 2 (padding 1), held under ``.op``."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest x2 then 3x3 convolution, held under ``.conv``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.Sequential):
    """Sequential that hands the time embedding to the ResBlocks it contains."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


def _per_level(value: int | Sequence[int], levels: int) -> list[int]:
    return [value] * levels if isinstance(value, int) else list(value)


class UNetModelSwin(nn.Module):
    """Swin-UNet denoiser of the ResShift family (118.6 M parameters in the x4 config).

    ``in_channels`` is the total conv_in width in the conference-era config (6 = 3 latent + 3 LR);
    the journal-era config gives ``in_channels=3, lq_size=image_size`` and the class adds
    ``lq_channels`` (3) conditioning channels, giving the same 6-channel first convolution.
    Other ``lq_size`` values (upstream's strided feature extractor for x2) are not supported.
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int | Sequence[int],
        attention_resolutions: Sequence[int],
        dropout: float = 0.0,
        channel_mult: Sequence[int] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        use_fp16: bool = False,
        num_heads: int = -1,
        num_head_channels: int = -1,
        use_scale_shift_norm: bool = True,
        resblock_updown: bool = False,
        swin_depth: int = 2,
        swin_embed_dim: int = 96,
        window_size: int = 8,
        mlp_ratio: float = 4.0,
        patch_norm: bool = False,
        cond_lq: bool = True,
        lq_size: int | None = None,
        lq_channels: int = 3,
        **ignored_flags,
    ):
        super().__init__()
        del use_fp16, ignored_flags  # upstream bookkeeping only; precision is chosen by the caller
        if dims != 2 or not conv_resample or resblock_updown or patch_norm:
            raise ValueError(
                "UNetModelSwin supports the released configuration only: dims=2, "
                "conv_resample=True, resblock_updown=False, patch_norm=False"
            )
        if lq_size is not None and lq_size != image_size:
            raise ValueError(
                f"lq_size={lq_size} != image_size={image_size} (upstream's strided LQ "
                "feature extractor) is not supported"
            )
        self.model_channels = model_channels
        self.cond_lq = cond_lq
        heads = swin_embed_dim // num_head_channels if num_head_channels > 0 else num_heads
        levels = len(channel_mult)
        res_blocks = _per_level(num_res_blocks, levels)
        temb_dim = model_channels * 4

        def swin(ch: int, res: int) -> SwinLayer:
            return SwinLayer(ch, swin_embed_dim, heads, window_size, swin_depth, res, mlp_ratio)

        def res_block(cin: int, cout: int) -> ResBlock:
            return ResBlock(cin, temb_dim, dropout, cout, use_scale_shift_norm)

        self.time_embed = nn.Sequential(nn.Linear(model_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        conv_in = in_channels + (lq_channels if cond_lq and lq_size is not None else 0)
        ch = model_channels * channel_mult[0]
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(conv_in, ch, 3, padding=1))])
        skip_chans = [ch]
        res = image_size
        for level, mult in enumerate(channel_mult):
            for i in range(res_blocks[level]):
                layers: list[nn.Module] = [res_block(ch, model_channels * mult)]
                ch = model_channels * mult
                if res in attention_resolutions and i == 0:
                    layers.append(swin(ch, res))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_chans.append(ch)
            if level != levels - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch)))
                skip_chans.append(ch)
                res //= 2
        self.middle_block = TimestepEmbedSequential(res_block(ch, ch), swin(ch, res), res_block(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(res_blocks[level] + 1):
                layers = [res_block(ch + skip_chans.pop(), model_channels * mult)]
                ch = model_channels * mult
                if res in attention_resolutions and i == 0:
                    layers.append(swin(ch, res))
                if level and i == res_blocks[level]:
                    layers.append(Upsample(ch))
                    res *= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.head_channels = ch
        self._build_head(out_channels)

    def _build_head(self, out_channels: int) -> None:
        self.out = nn.Sequential(
            normalization(self.head_channels), NormSiLU(), nn.Conv2d(self.head_channels, out_channels, 3, padding=1)
        )

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)

    def _condition(self, x: torch.Tensor, lq: torch.Tensor | None) -> torch.Tensor:
        """Concatenate ``lq`` after ``x``; resize it first as upstream does when sizes differ."""
        if lq is None:
            if self.cond_lq:
                raise ValueError("this UNet is conditioned on the LR image: pass lq=")
            return x
        if lq.shape[2:] != x.shape[2:]:
            lq = (
                F.pixel_unshuffle(lq, 2)
                if lq.shape[2] > x.shape[2]
                else F.interpolate(lq, scale_factor=4, mode="nearest")
            )
        return torch.cat([x, lq], dim=1)

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, lq: torch.Tensor | None = None, **unused
    ) -> torch.Tensor:
        """Predict the output (x0 for predict_type ``xstart``). Extra kwargs (UPSR's ``un``) are ignored."""
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        h = self._condition(x, lq)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self._head(h)


class UPSRUNetModelSwin(UNetModelSwin):
    """UPSR's ``network_g``: same trunk, 96 conditioning channels, nearest-upsampling RGB head.

    Input: ``x`` = PixelUnshuffle(4) of the RGB state (48 channels), ``lq`` = PixelUnshuffle(4) of
    ``cat[g(y), bicubic(y)]`` (96 channels). Output: full-resolution RGB (4x the input size).
    The head follows BasicSR's nearest+conv upsampler (LeakyReLU 0.01 after conv_before_upsample,
    0.2 elsewhere); no numeric golden exists for it, only the key manifest.
    """

    def __init__(self, *args, lq_channels: int = 96, num_feat: int = 128, **kwargs):
        self.num_feat = num_feat
        super().__init__(*args, lq_channels=lq_channels, **kwargs)

    def _build_head(self, out_channels: int) -> None:
        nf = self.num_feat
        self.conv_before_upsample = nn.Sequential(
            nn.Conv2d(self.head_channels, nf, 3, padding=1), nn.LeakyReLU(inplace=True)
        )
        self.conv_up1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        h = self.conv_before_upsample(h)
        h = self.lrelu(self.conv_up1(F.interpolate(h, scale_factor=2, mode="nearest")))
        h = self.lrelu(self.conv_up2(F.interpolate(h, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(h)))
