"""``VQModelTorch``: the VQ-f4 autoencoder shared by ResShift, SinSR, DifIISR and HF-Diff.

Key layout and numerics follow the official latent-diffusion ``Encoder`` / ``Decoder`` and
``VectorQuantizer2`` as used by ``ldm/models/autoencoder.py`` (state dict order: ``encoder``,
``decoder``, ``quantize``, ``quant_conv``, ``post_quant_conv``), so the released
``autoencoder_vq_f4.pth`` loads with ``strict=True``. ``encode`` does not quantise; ``decode``
quantises (nearest code by ``|z|^2 + |e|^2 - 2 z.e``, first index wins ties) with a
straight-through estimator so image-space losses back-propagate through a frozen decoder.

The single-head mid-block attention uses ``scaled_dot_product_attention`` (memory-efficient /
flash kernels): at 1024x768 output it attends over 49,152 positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


def _swish(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` as upstream computes it. ``x`` is always a fresh GroupNorm output that nothing
    else reads, so without autograd it is overwritten in place, a quarter of the channels at a time: no
    full-size temporary (one quarter-size one), the same bits as the out-of-place product."""
    if torch.is_grad_enabled():
        return x * torch.sigmoid(x)
    for part in x.chunk(4, dim=1):
        part.mul_(torch.sigmoid(part))
    return x


class ResnetBlock(nn.Module):
    """GN-swish-conv, GN-swish-dropout-conv, plus a 1x1 ``nin_shortcut`` when widths differ."""

    def __init__(self, cin: int, cout: int, dropout: float):
        super().__init__()
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(self.dropout(_swish(self.norm2(h))))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention (scale C^-0.5) with a residual, via SDPA."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        # Contiguous (B, 1, HW, C): with the transposed view (last-dim stride HW) SDPA falls back to
        # the math kernel and materialises the HW x HW scores twice (2 x 9.7 GB at 1024x768 output);
        # contiguous inputs take the flash (CPU) / memory-efficient (CUDA) kernels.
        q, k, v = (conv(y).reshape(b, 1, c, h * w).transpose(2, 3).contiguous() for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # default scale = C^-0.5
        return x + self.proj_out(out.transpose(2, 3).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Zero-pad right/bottom by one, then 3x3 conv with stride 2 and no padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2, then 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Mid(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution level: ``block`` (ResnetBlocks), ``attn`` and an optional resampler."""

    def __init__(
        self, blocks: list[ResnetBlock], attn: list[AttnBlock], resample: nn.Module | None, resample_name: str
    ):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attn)
        self._resample_name = resample_name if resample is not None else None
        if resample is not None:
            self.add_module(resample_name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if self.attn:
                x = self.attn[i](x)
        return getattr(self, self._resample_name)(x) if self._resample_name else x


class Encoder(nn.Module):
    """LDM encoder: conv_in, ``down`` levels (last one without downsampling), mid, GN-swish-conv_out."""

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        in_channels: int,
        resolution: int,
        z_channels: int,
        double_z: bool = True,
        dropout: float = 0.0,
        **ignored,
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin_mult = (1, *ch_mult)
        res = resolution
        for level, mult in enumerate(ch_mult):
            cin, cout = ch * cin_mult[level], ch * mult
            blocks, attn = [], []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(cin, cout, dropout))
                cin = cout
                if res in attn_resolutions:
                    attn.append(AttnBlock(cout))
            last = level == len(ch_mult) - 1
            self.down.append(_Level(blocks, attn, None if last else Downsample(cout), "downsample"))
            res = res if last else res // 2
        top = ch * ch_mult[-1]
        self.mid = _Mid(top, dropout)
        self.norm_out = _norm(top)
        self.conv_out = nn.Conv2d(top, 2 * z_channels if double_z else z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(_swish(self.norm_out(h)))


class Decoder(nn.Module):
    """LDM decoder: conv_in, mid, ``up`` levels (index 0 = full resolution), GN-swish-conv_out."""

    def __init__(
        self,
        *,
        ch: int,
        out_ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        resolution: int,
        z_channels: int,
        dropout: float = 0.0,
        **ignored,
    ):
        super().__init__()
        cin = ch * ch_mult[-1]
        res = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, cin, 3, padding=1)
        self.mid = _Mid(cin, dropout)
        levels: list[_Level] = []
        for level in reversed(range(len(ch_mult))):
            cout = ch * ch_mult[level]
            blocks, attn = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(cin, cout, dropout))
                cin = cout
                if res in attn_resolutions:
                    attn.append(AttnBlock(cout))
            levels.insert(0, _Level(blocks, attn, Upsample(cout) if level else None, "upsample"))
            res = res * 2 if level else res
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(_swish(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest-codebook quantiser (``VectorQuantizer2``, legacy loss, no remap).

    Distances are ``|z|^2 + |e|^2 - 2 z.e`` in the input dtype, argmin with the first index winning
    ties; the output is ``z + (e - z).detach()`` exactly as upstream forms it.
    """

    chunk_rows = 8192  # positions per distance-matrix chunk (memory bound only; results identical)

    def __init__(self, n_e: int, e_dim: int, beta: float = 0.25):
        super().__init__()
        self.n_e, self.e_dim, self.beta = n_e, e_dim, beta
        self.embedding = nn.Embedding(n_e, e_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_e, 1.0 / n_e)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Code index per position, (B, H, W)."""
        b, _, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.e_dim)
        emb = self.embedding.weight.to(flat.dtype)
        # Never under autocast: a bf16/fp16 matmul here would pick other codes than the fp32 path.
        # Rows are independent, so chunking only bounds the (positions x n_e) distance matrix
        # (49,152 x 8,192 x 4 B = 1.6 GB at 1024x768 output) without changing a single index.
        with torch.autocast(device_type=z.device.type, enabled=False):
            e2 = emb.pow(2).sum(dim=1)
            idx = [
                (f.pow(2).sum(dim=1, keepdim=True) + e2 - 2 * f @ emb.t()).argmin(dim=1)
                for f in flat.split(self.chunk_rows)
            ]
        return torch.cat(idx).view(b, h, w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (straight-through quantised z, indices)."""
        idx = self.indices(z)
        e = self.embedding(idx).permute(0, 3, 1, 2).to(z.dtype)
        return z + (e - z).detach(), idx


class VQModelTorch(nn.Module):
    """VQ autoencoder: ``encode`` = encoder + quant_conv; ``decode`` = quantise + post_quant_conv + decoder."""

    def __init__(self, ddconfig: dict, n_embed: int, embed_dim: int, **ignored):
        super().__init__()
        self.encoder = Encoder(**ddconfig)
        self.decoder = Decoder(**ddconfig)
        self.quantize = VectorQuantizer(n_embed, embed_dim, beta=0.25)
        self.quant_conv = nn.Conv2d(ddconfig["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image in [-1, 1] -> unquantised latent (the diffusion's z_y / z_0)."""
        return self.quant_conv(self.encoder(x))

    def decode(self, z: torch.Tensor, force_not_quantize: bool = False, grad_forward: bool = False) -> torch.Tensor:
        """Latent -> image. Quantises unless ``force_not_quantize``; the straight-through estimator
        always lets gradients reach ``z`` (``grad_forward`` is accepted for upstream call sites)."""
        del grad_forward
        quant = z if force_not_quantize else self.quantize(z)[0]
        return self.decoder(self.post_quant_conv(quant))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
