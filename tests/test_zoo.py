"""Baseline zoo: every spandrel method from a random-weight checkpoint written in its official layout.

Fast tests use small hyper-parameters of the same architectures (full-size SwinIR-L / HAT / DAT take
tens of seconds each just to initialise on a small CPU); ``test_full_size_official_checkpoint_loads``
(marked slow) builds each architecture with the exact hyper-parameters of its YAML.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import sr
from sr import weights as W
from sr.checkpoint import CheckpointError
from sr.errors import MissingWeightsError
from sr.methods.spandrel_method import SpandrelMethod, _arch_class, build_network, official_state_dict
from sr.registry import method_spec

SPANDREL_METHODS = ["esrgan", "realsr_jpeg", "bsrgan", "realesrgan", "swinir", "hat", "dat"]

SMALL = {
    "ESRGAN": dict(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4),
    "SwinIR": dict(
        upscale=4,
        in_chans=3,
        img_size=16,
        window_size=8,
        img_range=1.0,
        depths=[2],
        embed_dim=12,
        num_heads=[2],
        mlp_ratio=2,
        upsampler="nearest+conv",
        resi_connection="3conv",
    ),
    "HAT": dict(
        upscale=4,
        in_chans=3,
        img_size=16,
        window_size=8,
        compress_ratio=3,
        squeeze_factor=30,
        conv_scale=0.01,
        overlap_ratio=0.5,
        img_range=1.0,
        depths=[2],
        embed_dim=90,
        num_heads=[3],
        mlp_ratio=2,
        upsampler="pixelshuffle",
        resi_connection="1conv",
    ),
    "DAT": dict(
        upscale=4,
        in_chans=3,
        img_size=16,
        img_range=1.0,
        split_size=[4, 8],
        depth=[2],
        embed_dim=32,
        num_heads=[2],
        expansion_factor=2,
        resi_connection="1conv",
    ),
}


def _options(name: str) -> dict:
    return method_spec(name).options


def _write_official(name: str, weights_dir, arch_params: dict) -> dict:
    """Write a random-weight checkpoint of method ``name`` where the registry expects it; returns it."""
    opts = _options(name)
    torch.manual_seed(0)
    checkpoint = official_state_dict(build_network(opts["arch"], arch_params), opts["layout"])
    path = W.path_of(opts["weights"], weights_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return checkpoint


def test_every_spandrel_method_is_registered():
    names = sr.list_methods()
    for name in SPANDREL_METHODS:
        assert name in names
        spec = method_spec(name)
        assert spec.factory == "sr.methods.spandrel_method:SpandrelMethod"
        W.entry(spec.options["weights"])  # names an existing registry entry


@pytest.mark.parametrize("name", SPANDREL_METHODS)
def test_yaml_hyper_parameters_fit_the_spandrel_class(name):
    opts = _options(name)
    accepted = set(inspect.signature(_arch_class(opts["arch"]).__init__).parameters)
    assert set(opts["arch_params"]) <= accepted
    scale = opts["arch_params"].get("scale", opts["arch_params"].get("upscale"))
    assert scale == method_spec(name).scale


def test_official_layouts_use_the_upstream_key_names():
    net = build_network("ESRGAN", SMALL["ESRGAN"])
    esrgan = official_state_dict(net, "esrgan")
    assert {
        "conv_first.weight",
        "RRDB_trunk.0.RDB1.conv1.weight",
        "trunk_conv.weight",
        "upconv1.weight",
        "upconv2.weight",
        "HRconv.weight",
        "conv_last.weight",
    } <= set(esrgan)
    basicsr = official_state_dict(net, "basicsr_rrdb")
    assert set(basicsr) == {"params_ema"}
    assert {
        "conv_first.weight",
        "body.0.rdb1.conv1.weight",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.weight",
    } <= set(basicsr["params_ema"])
    assert len(esrgan) == len(basicsr["params_ema"]) == len(net.state_dict())
    assert set(official_state_dict(build_network("DAT", SMALL["DAT"]), "params")) == {"params"}


@pytest.mark.parametrize("name", SPANDREL_METHODS)
def test_method_runs_from_official_layout_checkpoint(name, tmp_path):
    arch = _options(name)["arch"]
    _write_official(name, tmp_path, SMALL[arch])
    method = sr.load_method(name, weights_dir=tmp_path)
    assert isinstance(method, SpandrelMethod)
    assert method.flags == ()
    assert method.weight_files()["network"] == W.path_of(_options(name)["weights"], tmp_path)
    for channels in (1, 3):
        x = torch.rand(1, channels, 17, 19)
        y = method.upscale(x)
        assert y.shape == (1, channels, 68, 76)
        assert torch.isfinite(y).all() and 0 <= y.min() and y.max() <= 1


@pytest.mark.parametrize("name", SPANDREL_METHODS)
def test_random_weights_build_without_a_file_and_are_flagged(name, tmp_path):
    arch = _options(name)["arch"]
    method = sr.load_method(name, weights_dir=tmp_path, random_weights=True, arch_params=SMALL[arch])
    assert method.flags == ("random_weights",)
    assert method.weight_files() == {}
    y = method.upscale(torch.rand(2, 1, 16, 16))
    assert y.shape == (2, 1, 64, 64)


def test_missing_weights_name_file_url_and_directory(tmp_path):
    with pytest.raises(MissingWeightsError) as info:
        sr.load_method("realesrgan", weights_dir=tmp_path)
    message = str(info.value)
    assert "RealESRGAN_x4plus.pth" in message and str(tmp_path) in message
    assert "github.com/xinntao/Real-ESRGAN/releases" in message


def test_wrong_architecture_is_a_clear_error(tmp_path):
    # an ESRGAN checkpoint where SwinIR is expected
    checkpoint = official_state_dict(build_network("ESRGAN", SMALL["ESRGAN"]), "params_ema")
    path = W.path_of(_options("swinir")["weights"], tmp_path)
    path.parent.mkdir(parents=True)
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="holds a ESRGAN network, but the method expects SwinIR"):
        sr.load_method("swinir", weights_dir=tmp_path)


def test_wrong_scale_is_a_clear_error(tmp_path):
    _write_official("bsrgan", tmp_path, {**SMALL["ESRGAN"], "scale": 2})
    with pytest.raises(CheckpointError, match="x2 ESRGAN network, but the method is x4"):
        sr.load_method("bsrgan", weights_dir=tmp_path)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    path = W.path_of(_options("esrgan")["weights"], tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="RRDB_ESRGAN_x4.pth"):
        sr.load_method("esrgan", weights_dir=tmp_path)


def test_tiling_bounds_the_tile_and_matches_untiled_away_from_seams(tmp_path):
    _write_official("esrgan", tmp_path, SMALL["ESRGAN"])
    whole = sr.load_method("esrgan", weights_dir=tmp_path, tile=None)
    tiled = sr.load_method("esrgan", weights_dir=tmp_path, tile=16, tile_overlap=4)
    seen = []
    original = tiled._run
    tiled._run = lambda patch: (seen.append(tuple(patch.shape[-2:])), original(patch))[1]
    x = torch.rand(1, 3, 40, 27)
    y_tiled, y_whole = tiled.upscale(x), whole.upscale(x)
    assert y_tiled.shape == y_whole.shape == (1, 3, 160, 108)
    assert len(seen) > 1 and all(h <= 16 and w <= 16 for h, w in seen)
    # the receptive field is small: the first tile's interior equals the whole-image result
    assert torch.allclose(y_tiled[..., :24, :24], y_whole[..., :24, :24], atol=1e-5)
    # a tile larger than the frame is the untiled path
    big = sr.load_method("esrgan", weights_dir=tmp_path, tile=64)
    assert torch.equal(big.upscale(x), y_whole)


def test_invalid_options_are_config_errors(tmp_path):
    from sr.errors import ConfigError

    with pytest.raises(ConfigError, match="layout"):
        sr.load_method("esrgan", random_weights=True, layout="nope", arch_params=SMALL["ESRGAN"])
    with pytest.raises(ConfigError, match="tile"):
        sr.load_method("esrgan", random_weights=True, tile=8, arch_params=SMALL["ESRGAN"])
    with pytest.raises(ConfigError, match="arch_params"):
        sr.load_method("esrgan", random_weights=True, arch_params={"bogus": 1})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["realesrgan", "esrgan", "swinir", "hat", "dat"])
def test_full_size_official_checkpoint_loads(name, tmp_path):
    """The YAML's official hyper-parameters, written in the official layout, load through the real path."""
    opts = _options(name)
    checkpoint = _write_official(name, tmp_path, opts["arch_params"])
    method = sr.load_method(name, weights_dir=tmp_path)
    state = checkpoint.get("params_ema", checkpoint.get("params", checkpoint))
    n_params = sum(
        v.numel()
        for k, v in state.items()
        if "relative_position_index" not in k and "attn_mask" not in k and "rpi" not in k and v.is_floating_point()
    )
    assert n_params > 10_000_000
    assert method.descriptor.architecture.id == opts["arch"]
    y = method.upscale(torch.rand(1, 1, 16, 16))
    assert y.shape == (1, 1, 64, 64) and math.isfinite(float(y.mean()))
