"""The SR interface: registry, channel handling, PIL-exact interpolation, the hr row."""

import numpy as np
import pytest
import torch
from PIL import Image

import sr
from sr.errors import ConfigError, UnknownNameError


def test_registry_lists_interpolation_and_reference():
    names = sr.list_methods()
    for name in ("bicubic", "nearest", "lanczos", "hr"):
        assert name in names


def test_unknown_method_suggests_close_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'bicubic'"):
        sr.load_method("bicubc")


def test_unknown_option_and_wrong_scale_are_config_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        sr.load_method("bicubic", sharpen=True)
    with pytest.raises(ConfigError, match="x4 method"):
        sr.load_method("bicubic", scale=2)


@pytest.mark.parametrize(
    "name,pil", [("bicubic", Image.BICUBIC), ("nearest", Image.NEAREST), ("lanczos", Image.LANCZOS)]
)
def test_interpolation_equals_pil_on_8bit_frames(name, pil):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(23, 31), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(frame).resize((31 * 4, 23 * 4), pil), dtype=np.float32) / 255.0
    x = torch.from_numpy(frame.astype(np.float32) / 255.0)[None, None]
    y = sr.load_method(name).upscale(x)
    assert y.shape == (1, 1, 92, 124)
    assert torch.equal(y[0, 0], torch.from_numpy(expected))


def test_channels_are_kept_and_output_in_range():
    m = sr.load_method("bicubic")
    for channels in (1, 3):
        x = torch.rand(2, channels, 9, 7)
        y = m.upscale(x)
        assert y.shape == (2, channels, 36, 28) and y.dtype == torch.float32
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_bad_input_is_rejected_with_the_method_name():
    m = sr.load_method("bicubic")
    with pytest.raises(ValueError, match="bicubic: expected 1 or 3 channels"):
        m.upscale(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="4-D"):
        m.upscale(torch.rand(8, 8))


def test_hr_returns_the_reference():
    m = sr.load_method("hr")
    lr, hr = torch.rand(1, 1, 5, 6), torch.rand(1, 1, 20, 24)
    assert torch.equal(m.upscale(lr, reference=hr), hr)
    with pytest.raises(ValueError, match="reference"):
        m.upscale(lr)
