"""The official ResShift-family methods load random-weight checkpoints written in their official
layouts (ResShift/SinSR/DifIISR trainers: ``{'state_dict': ...}``, DDP ``module.`` prefixes, raw EMA
dicts; the VQ-f4 as a flat state dict) through the real registry path, and run ``upscale`` on 1- and
3-channel input. Networks are shrunk through method options so the test is fast; the full-size key
layouts are checked against the official manifests in test_conformance_nets.py."""

import pytest
import torch

import sr
from sr import weights as registry
from sr.nn import UNetModelSwin, VQModelTorch

SMALL_UNET = dict(
    image_size=16,
    in_channels=6,
    model_channels=32,
    out_channels=3,
    cond_lq=True,
    attention_resolutions=[8],
    dropout=0.0,
    channel_mult=[1, 2],
    num_res_blocks=[1, 1],
    num_head_channels=8,
    use_scale_shift_norm=True,
    swin_depth=2,
    swin_embed_dim=32,
    window_size=8,
    mlp_ratio=2,
)
SMALL_VQ = dict(
    ddconfig=dict(
        double_z=False,
        z_channels=3,
        resolution=64,
        in_channels=3,
        out_ch=3,
        ch=32,
        ch_mult=[1, 2, 4],
        num_res_blocks=1,
        attn_resolutions=[],
        dropout=0.0,
    ),
    n_embed=64,
    embed_dim=3,
)
LAYOUTS = {
    "resshift_v1": "state_dict",
    "resshift_v2": "module",
    "resshift_v3": "ema_raw",
    "sinsr": "state_dict",
    "difiisr": "module",
    "hfdiff": "state_dict",
}


def _write(path, state, layout):
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "module":
        state = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    elif layout == "state_dict":
        state = {"iters_start": 10, "state_dict": state}
    torch.save(state, path)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_official_layout_checkpoints_load_and_upscale(name, tmp_path):
    spec = sr.method_spec(name)
    unet_kwargs = dict(SMALL_UNET, in_channels=3, lq_size=16) if name == "resshift_v3" else SMALL_UNET
    torch.manual_seed(0)
    unet, vq = UNetModelSwin(**unet_kwargs), VQModelTorch(**SMALL_VQ)
    roles = spec.options["weights"]
    _write(registry.weights_dir(tmp_path) / registry.entry(roles["unet"]).file, unet.state_dict(), LAYOUTS[name])
    _write(registry.weights_dir(tmp_path) / registry.entry(roles["vq"]).file, vq.state_dict(), "flat")
    method = sr.load_method(name, weights_dir=tmp_path, unet=unet_kwargs, vq=SMALL_VQ, pad_multiple=16)
    assert method.flags == () and set(method.weight_files()) >= {"unet", "vq"}
    loaded = dict(method.unet.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in unet.state_dict().items())
    for channels in (1, 3):
        x = torch.rand(1, channels, 12, 20)
        y = method.upscale(x)
        assert y.shape == (1, channels, 48, 80) and torch.isfinite(y).all()
        assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(method.upscale(x), y)  # seeded: the same input gives the same output


def test_a_wrong_checkpoint_names_the_file_and_the_missing_keys(tmp_path):
    roles = sr.method_spec("difiisr").options["weights"]
    _write(
        registry.weights_dir(tmp_path) / registry.entry(roles["unet"]).file,
        {"not.a.unet.weight": torch.zeros(1)},
        "state_dict",
    )
    _write(
        registry.weights_dir(tmp_path) / registry.entry(roles["vq"]).file, VQModelTorch(**SMALL_VQ).state_dict(), "flat"
    )
    with pytest.raises(sr.errors.UserError, match="DifIISR.pth") as info:
        sr.load_method("difiisr", weights_dir=tmp_path, unet=SMALL_UNET, vq=SMALL_VQ, pad_multiple=16)
    assert "missing" in str(info.value)


def test_random_weights_run_through_the_benchmark_flagged(tmp_path, monkeypatch):
    from benchmarks.run import main as run_main
    from sr import registry as method_registry

    real = method_registry.method_spec

    def small(name):
        spec = real(name)
        if name == "difiisr":
            spec.options.update(unet=SMALL_UNET, vq=SMALL_VQ, pad_multiple=16)
        return spec

    monkeypatch.setattr(method_registry, "method_spec", small)
    out = tmp_path / "run"
    assert (
        run_main(
            [
                "--methods",
                "difiisr",
                "--random-weights",
                "--tasks",
                "quality",
                "--metrics",
                "psnr",
                "--limit",
                "1",
                "--out",
                str(out),
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    import pandas as pd

    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    row = df[(df.method == "difiisr") & (df.metric == "psnr")].iloc[0]
    assert row["flags"] == "random_weights" and row["value"] > 0
