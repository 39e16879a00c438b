"""The ``upsr`` method (UPSR, CVPR 2025) and its prior ``atd_real``, from checkpoints in the official layouts.

The full-size network_g manifest is checked in test_conformance_nets.py; here the same code paths run
with small hyper-parameters (method option overrides) so the tests stay fast on CPU.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import sr
from sr.weights import entry

pytest.importorskip("spandrel")

SMALL_UNET = dict(
    arch="upsr",
    image_size=16,
    in_channels=48,
    model_channels=32,
    out_channels=3,
    attention_resolutions=[8],
    dropout=0.0,
    channel_mult=[1, 2],
    num_res_blocks=[1, 1],
    num_head_channels=8,
    use_scale_shift_norm=True,
    swin_depth=1,
    swin_embed_dim=32,
    window_size=4,
    mlp_ratio=1,
    cond_lq=True,
    lq_size=16,
    num_feat=16,
)
SMALL_ATD = dict(
    upscale=4,
    in_chans=3,
    img_size=64,
    embed_dim=24,
    depths=[2],
    num_heads=[2],
    window_size=8,
    category_size=32,
    num_tokens=16,
    reducted_dim=4,
    convffn_kernel_size=3,
    img_range=1.0,
    mlp_ratio=1,
    upsampler="pixelshuffledirect",
    resi_connection="1conv",
)


def _small_options() -> dict:
    spec = sr.registry.method_spec("upsr")
    upsr = dict(spec.options["upsr"], prior_options={"arch_params": SMALL_ATD})
    return dict(unet=SMALL_UNET, pad_multiple=16, upsr=upsr)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _write_official_checkpoints(weights_dir) -> dict[str, torch.Tensor]:
    """upsr.pth as BasicSR writes it ({'params', 'params_ema'}, different values) and atd_real.pth
    ({'params_ema'}); returns the params_ema state of the denoiser."""
    from sr.methods.spandrel_method import build_network, official_state_dict
    from sr.nn import UPSRUNetModelSwin

    kwargs = {k: v for k, v in SMALL_UNET.items() if k != "arch"}
    torch.manual_seed(1)
    ema = UPSRUNetModelSwin(**kwargs).state_dict()
    torch.manual_seed(2)
    raw = UPSRUNetModelSwin(**kwargs).state_dict()
    unet_file = weights_dir / entry("upsr").file
    unet_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": raw, "params_ema": ema}, unet_file)
    torch.manual_seed(3)
    torch.save(
        official_state_dict(build_network("ATD", SMALL_ATD), "params_ema"), weights_dir / entry("upsr_atd_real").file
    )
    return ema


def test_yaml_matches_the_official_configuration():
    from reference import load_json

    from sr.methods.resshift import UNET_PRESETS

    spec = sr.registry.method_spec("upsr")
    o = spec.options
    assert o["unet"] == "upsr_x4" and o["schedule"] == "upsr_t5" and o["input_scaling"] == "upsr"
    assert o["steps_mode"] == "ddim" and o["pad_multiple"] == 64 and o["first_stage"] == "pixel_unshuffle"
    assert o["upsr"]["prior_method"] == "atd_real" and (o["upsr"]["psi_max"], o["upsr"]["b"]) == (0.1, 0.4)
    official = load_json("manifest_summary.json")["manifest_upsr_network_g.tsv"]["params"]
    preset = {k: v for k, v in UNET_PRESETS["upsr_x4"].items() if k != "arch"}
    assert preset == official
    atd = sr.registry.method_spec("atd_real").options
    assert atd["layout"] == "params_ema" and atd["arch_params"]["category_size"] == 128
    assert "1Rde_8kTeNEA4kjUqCv2tiXV0vmmVCKGR" in entry("upsr").url == entry("upsr_atd_real").url


def test_upscale_from_official_layout_checkpoints(tmp_path):
    ema = _write_official_checkpoints(tmp_path)
    m = sr.load_method("upsr", weights_dir=str(tmp_path), **_small_options())
    assert m.flags == ()
    for k, v in m.unet.state_dict().items():  # params_ema, not params
        assert torch.equal(v, ema[k]), k
    assert set(m.weight_files()) == {"unet", "prior.network"}
    assert m.diffusion.model_output_unshuffle == 4 and m.diffusion.num_timesteps == 5
    # the prior keeps the YAML's category_size (spandrel alone would guess 256 for a non-light ATD)
    attn = m._prior.descriptor.model.layers[0].residual_group.layers[0].attn_aca
    assert attn.category_size == 32
    g = torch.Generator().manual_seed(0)
    for channels in (1, 3):
        x = torch.rand(1, channels, 12, 20, generator=g)
        y = m.upscale(x)
        assert y.shape == (1, channels, 48, 80) and torch.isfinite(y).all()
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
        assert torch.equal(y, m.upscale(x))  # seeded: deterministic


def test_random_weights_are_flagged_and_need_no_files(tmp_path):
    m = sr.load_method("upsr", weights_dir=str(tmp_path), random_weights=True, **_small_options())
    assert "random_weights" in m.flags and m.weight_files() == {}
    y = m.upscale(torch.rand(1, 1, 8, 8))
    assert y.shape == (1, 1, 32, 32)


def test_missing_weights_name_the_file(tmp_path):
    from sr.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="upsr.pth"):
        sr.load_method("upsr", weights_dir=str(tmp_path))
    _write_official_checkpoints(tmp_path)
    (tmp_path / entry("upsr_atd_real").file).unlink()
    with pytest.raises(MissingWeightsError, match="atd_real.pth"):
        sr.load_method("upsr", weights_dir=str(tmp_path), **_small_options())


def _run(tmp_path, *extra):
    import pandas as pd

    from benchmarks.run import main as run_main

    out = tmp_path / "out"
    code = run_main(
        [
            "--methods",
            "upsr",
            "--tasks",
            "quality",
            "--metrics",
            "psnr",
            "--limit",
            "1",
            "--quiet",
            "--no-report",
            "--out",
            str(out),
            "--weights-dir",
            str(tmp_path / "weights"),
            *extra,
        ]
    )
    assert code == 0
    return pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])


def test_benchmark_run_without_weights_is_unavailable_with_reason(tmp_path):
    df = _run(tmp_path)
    rows = df[(df.method == "upsr") & (df.metric == "unavailable")]
    assert len(rows) >= 1
    msg = rows.error.iloc[0]
    assert "upsr.pth" in msg and "1Rde_8kTeNEA4kjUqCv2tiXV0vmmVCKGR" in msg


def test_benchmark_run_with_random_weights(tmp_path, monkeypatch):
    """``--methods upsr --random-weights`` end to end; the YAML's networks are swapped for small ones."""
    real, small = sr.registry.method_spec, _small_options()

    def small_spec(name):
        spec = real(name)
        if name == "upsr":
            return dataclasses.replace(spec, options={**spec.options, **small})
        return spec

    monkeypatch.setattr(sr.registry, "method_spec", small_spec)
    df = _run(tmp_path, "--random-weights")
    rows = df[(df.method == "upsr") & (df.metric == "psnr")]
    assert len(rows) >= 1 and rows.value.notna().all(), df.to_string()
    assert rows["flags"].str.contains("random_weights").all()
