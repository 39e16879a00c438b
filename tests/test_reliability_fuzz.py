"""Hypothesis fuzz over image shapes, dtypes and channel counts through ``upscale`` of the interpolation
methods (a small diffusion method gets the same fuzz in tests/test_reliability_diffusion.py)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sr

METHODS = ("bicubic", "nearest", "lanczos")
_CACHE: dict[str, sr.SRMethod] = {}


def _method(name: str):
    if name not in _CACHE:
        _CACHE[name] = sr.load_method(name)
    return _CACHE[name]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(METHODS),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 3]),
    b=st.integers(1, 2),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16]),
    seed=st.integers(0, 2**16),
)
def test_upscale_any_shape_dtype_channels(name, h, w, c, b, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g).to(dtype)
    m = _method(name)
    y = m.upscale(x)
    assert y.shape == (b, c, h * m.scale, w * m.scale) and y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    if name == "nearest":  # exact: every output pixel is an input pixel
        ref = x.float().repeat_interleave(m.scale, 2).repeat_interleave(m.scale, 3)
        torch.testing.assert_close(y, ref, atol=1 / 255, rtol=0)
    if h * w > 1:
        x2 = torch.full((b, c, h, w), 0.25, dtype=dtype)
        torch.testing.assert_close(m.upscale(x2), torch.full_like(y, float(x2[0, 0, 0, 0])), atol=2 / 255, rtol=0)


@pytest.mark.parametrize(
    "bad", [torch.zeros(1, 2, 4, 4), torch.zeros(4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.uint8)]
)
def test_invalid_input_is_a_clear_valueerror(bad):
    with pytest.raises(ValueError, match="bicubic"):
        _method("bicubic").upscale(bad)
