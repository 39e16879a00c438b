"""A small diffusion method under fuzzed inputs, and huge frames (tiling keeps memory bounded).

* Fuzz (hypothesis) over LR height/width 1..40, 1 or 3 channels, float16/32/64 and batch 1-2 through
  ``upscale`` of the committed demo DifIISR model (``difiisr_demo``), with its own tiling (one tile at
  these sizes) or with 24-pixel LR tiles (stride 20; frames above 24 pixels go through the tiled path).
  Every size from 1x1 up must work: the sampler mirror-pads to ``pad_multiple`` and falls back to
  replicate padding on a 1-pixel axis (:func:`sr.sampler.reflect_pad_to_multiple`). The input dtype
  changes nothing but the conversion to float32 (checked exactly on small frames).
* Peak resident memory of one LR 512x384 frame in fresh processes (``benchmarks.speed.memory``): 192-pixel
  LR tiles need well under the untiled call's memory (a ratio, not an absolute figure).
"""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sr
from sr import weights
from sr.sampler import reflect_pad_to_multiple

METHOD = "difiisr_demo"
VARIANTS = {"own": {}, "tiles24": {"chop_size": 24, "chop_stride": 20}}
_CACHE: dict[str, sr.SRMethod] = {}

pytestmark = pytest.mark.skipif(not weights.path_of(METHOD).is_file(), reason=f"demo weights {METHOD} not committed")


def _method(variant: str) -> sr.SRMethod:
    if variant not in _CACHE:
        _CACHE[variant] = sr.load_method(METHOD, **VARIANTS[variant])
    return _CACHE[variant]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 3]),
    b=st.integers(1, 2),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16]),
    seed=st.integers(0, 2**16),
)
def test_diffusion_upscale_any_shape_dtype_channels(variant, h, w, c, b, dtype, seed):
    m = _method(variant)
    x = torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)).to(dtype)
    y = m.upscale(x)
    assert y.shape == (b, c, h * m.scale, w * m.scale) and y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_input_dtype_only_converts(dtype):
    # upscale converts to float32 first and the sampler seeds its noise per call
    x = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)).to(dtype)
    m = _method("own")
    assert torch.equal(m.upscale(x), m.upscale(x.float()))


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (5, 1), (2, 2), (1, 40)])
def test_tiny_frames_pad_without_error(h, w):
    x = torch.rand(1, 3, h, w)
    p = reflect_pad_to_multiple(x, 16)
    assert p.shape[-2] % 16 == 0 and p.shape[-1] % 16 == 0
    assert torch.equal(p[..., :h, :w], x)
    y = _method("own").upscale(x[:, :1])
    assert y.shape == (1, 1, 4 * h, 4 * w) and torch.isfinite(y).all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_tiling_bounds_peak_memory_of_a_large_frame():
    from benchmarks.speed.memory import measure

    h, w = 384, 512
    tiled = measure(METHOD, h, w, "tiled192", chop=(192, 192), timeout=300)
    untiled = measure(METHOD, h, w, "untiled", timeout=300)
    assert tiled["status"] == "ok" and untiled["status"] == "ok", (tiled, untiled)
    assert tiled["tiles"] == 6 and untiled["tiles"] == 1
    print(f"LR {w}x{h} peak RSS: tiled 192 {tiled['peak_gib']} GiB, untiled {untiled['peak_gib']} GiB")
    assert tiled["peak_gib"] < 0.6 * untiled["peak_gib"], (tiled, untiled)
