"""Swin window-attention layer of the ResShift-family UNet (``models/swin_transformer.py`` upstream).

Layout and maths match the official ``BasicLayer`` / ``SwinTransformerBlock`` / ``WindowAttention``
so that official checkpoints load unchanged:

* a layer is ``patch_embed`` (1x1 conv C->E), ``patch_unembed`` (1x1 conv E->C) and ``blocks``;
  there is no residual around the layer and no patch norm;
* a block works on B x E x H x W maps: GroupNorm(32) -> (shifted) window attention -> residual,
  GroupNorm(32) -> 1x1-conv MLP with exact GELU -> residual;
* odd blocks are cyclically shifted by ``window // 2``, except when the build-time resolution
  (from ``image_size``, not the runtime size) is no larger than the window: then the window shrinks
  to that resolution and the shift is 0;
* the relative-position index and the build-size shifted-window mask are persistent buffers (the
  mask is stored for checkpoint compatibility only; as upstream, the mask actually applied is always
  recomputed for the runtime size, here cached per size); masked pairs get -100, not -inf, and the
  mask keeps upstream's row-band labelling (see :func:`shifted_window_mask`).

Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with the relative
position bias (plus the shift mask) as an additive ``attn_mask``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr.nn.layers import normalization


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, window*window, C); windows row-major, tokens row-major inside."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (h // window) * (w // window), window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B, nW, window*window, C) -> (B, H, W, C)."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int, device: torch.device | None = None) -> torch.Tensor:
    """Additive mask (nW, N, N) of the shifted-window scheme as upstream computes it.

    Upstream labels a (1, 1, H, W) map with ``img_mask[:, h_slice, w_slice, :]``, so the region
    labels end up depending on the row only (three bands: ``[0, H-window)``, ``[H-window,
    H-shift)``, ``[H-shift, H)``), and it flattens each window column-major, so token ``p`` of a
    window in window-row ``a`` carries the label of row ``a*window + p % window``. We reproduce
    exactly that mask (verified equal to the stored ``attn_mask`` buffers): 0 for equal labels,
    -100 otherwise.
    """
    band = torch.zeros(h, device=device)
    band[h - window : h - shift] = 1
    band[h - shift :] = 2
    window_row = torch.arange(h // window, device=device).repeat_interleave(w // window)
    token = torch.arange(window * window, device=device)
    ids = band[window_row[:, None] * window + token[None, :] % window]
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


def relative_position_index(window: int) -> torch.Tensor:
    """Standard Swin index (N, N) into the (2w-1)^2 relative-position bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside square windows with a learned relative-position bias."""

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, nW, N, C); mask: (nW, N, N) additive or None. Returns (B, nW, N, C)."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).reshape(b, nw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (B, nW, heads, N, d)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)  # (heads, N, N)
        if mask is not None:
            bias = bias.unsqueeze(0) + mask.unsqueeze(1)  # (nW, heads, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    """1x1-conv MLP: fc1 (E -> hidden), exact GELU, fc2 (hidden -> E)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """One (optionally shifted) window-attention block on B x C x H x W maps."""

    def __init__(
        self,
        dim: int,
        build_resolution: int,
        num_heads: int,
        window: int,
        shift: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
    ):
        super().__init__()
        if build_resolution <= window:  # upstream: the window covers the whole map, no shift
            window, shift = build_resolution, 0
        self.window, self.shift = window, shift
        self.norm1 = normalization(dim)
        self.attn = WindowAttention(dim, window, num_heads, qkv_bias)
        self.norm2 = normalization(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(build_resolution, build_resolution, window, shift) if shift else None
        self.register_buffer("attn_mask", mask)
        self._mask_cache: dict[tuple, torch.Tensor] = {}

    def _runtime_mask(self, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        if not self.shift:
            return None
        if torch.compiler.is_compiling():  # traced into the graph; a cache write would make dynamo recompile
            return shifted_window_mask(h, w, self.window, self.shift, device)
        key = (h, w, device)
        if key not in self._mask_cache:
            self._mask_cache[key] = shifted_window_mask(h, w, self.window, self.shift, device)
        return self._mask_cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        y = self.norm1(x).permute(0, 2, 3, 1)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), self._runtime_mask(h, w, x.device))
        y = window_reverse(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.permute(0, 3, 1, 2)
        return x + self.mlp(self.norm2(x))


class SwinLayer(nn.Module):
    """Upstream ``BasicLayer`` with patch size 1: 1x1 conv in, ``depth`` Swin blocks, 1x1 conv out."""

    def __init__(
        self,
        in_chans: int,
        embed_dim: int,
        num_heads: int,
        window_size: int,
        depth: int,
        build_resolution: int,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        self.patch_embed = _Proj(in_chans, embed_dim)
        self.patch_unembed = _Proj(embed_dim, in_chans)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                embed_dim,
                build_resolution,
                num_heads,
                window_size,
                shift=0 if i % 2 == 0 else window_size // 2,
                mlp_ratio=mlp_ratio,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        return self.patch_unembed(x)


class _Proj(nn.Module):
    """1x1 convolution held under ``.proj`` (the key layout of upstream PatchEmbed/PatchUnEmbed)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
