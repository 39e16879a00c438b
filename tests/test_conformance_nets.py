"""UNetModelSwin / UPSR network_g / VQModelTorch against the conformance kit (manifests + goldens)."""

from __future__ import annotations

import pytest
import torch
from reference import build_small_unet, build_small_vq, golden_ties, load_json, load_pt, ref_path

from sr.nn import UNetModelSwin, UPSRUNetModelSwin, VQModelTorch
from sr.nn.swin import shifted_window_mask

NET_TOL = dict(atol=2e-5, rtol=1e-4)

MANIFESTS = [
    ("manifest_unet_x4_DifIISR_SinSR_ResShift.tsv", UNetModelSwin),
    ("manifest_vq_f4.tsv", VQModelTorch),
    ("manifest_upsr_network_g.tsv", UPSRUNetModelSwin),
]


def _manifest_rows(name: str) -> list[tuple[str, str, str, str]]:
    lines = ref_path(name).read_text().splitlines()
    assert lines[0].split("\t") == ["key", "shape", "dtype", "is_buffer"]
    return [tuple(line.split("\t")) for line in lines[1:]]


def _our_rows(model: torch.nn.Module) -> list[tuple[str, str, str, str]]:
    buffers = {name for name, _ in model.named_buffers()}
    return [
        (key, "x".join(map(str, t.shape)), str(t.dtype).removeprefix("torch."), "true" if key in buffers else "false")
        for key, t in model.state_dict().items()
    ]


@pytest.mark.parametrize("manifest,cls", MANIFESTS, ids=[m for m, _ in MANIFESTS])
def test_full_size_manifest(manifest, cls):
    summary = load_json("manifest_summary.json")[manifest]
    torch.manual_seed(0)
    model = cls(**summary["params"])  # real CPU build of the full-size network
    assert _our_rows(model) == _manifest_rows(manifest)
    assert sum(p.numel() for p in model.parameters()) == summary["n_parameters"]
    assert sum(1 for _ in model.buffers()) == summary.get("n_buffer_entries", 0)
    if "n_buffer_elements" in summary:
        assert sum(b.numel() for b in model.buffers()) == summary["n_buffer_elements"]


def test_unet_accepts_journal_style_kwargs():
    """ResShift HEAD configs say in_channels 3 + lq_size 64: the same 6-channel first conv."""
    params = dict(load_json("unet_small_config.json")["params"], in_channels=3, lq_size=64)
    assert _our_rows(UNetModelSwin(**params)) == _our_rows(build_small_unet("asbuilt"))


def test_stored_attn_masks_equal_recomputed_masks():
    state = load_pt("unet_small_state.pt")
    masks = {k: v for k, v in state.items() if k.endswith("attn_mask")}
    assert len(masks) == 6
    for key, mask in masks.items():
        side = 8 * int(mask.shape[0] ** 0.5)
        assert torch.equal(shifted_window_mask(side, side, 8, 4), mask), key


@pytest.mark.parametrize("weights", ["asbuilt", "dense"])
@pytest.mark.parametrize("case", ["A", "B"])
def test_small_unet_golden(weights, case):
    net, cases = build_small_unet(weights), load_pt("unet_small_cases.pt")
    with torch.no_grad():
        out = net(cases[f"{case}.x"], cases[f"{case}.t"], lq=cases[f"{case}.lq"])
        out_scaled = net(cases[f"{case}.x_scaled"], cases[f"{case}.t"], lq=cases[f"{case}.lq"])
    torch.testing.assert_close(out, cases[f"{case}.out.{weights}"], **NET_TOL)
    torch.testing.assert_close(out_scaled, cases[f"{case}.out_scaled.{weights}"], **NET_TOL)


def test_small_unet_intermediates_and_time_embedding():
    from sr.nn.layers import timestep_embedding

    net, cases = build_small_unet("dense"), load_pt("unet_small_cases.pt")
    for case in "AB":
        sinus = timestep_embedding(cases[f"{case}.t"], 32)
        torch.testing.assert_close(sinus, cases[f"{case}.temb_sinusoid"], atol=1e-6, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(net.time_embed(sinus), cases[f"{case}.temb.dense"], **NET_TOL)
    seen: dict[str, torch.Tensor] = {}
    names = [k.removeprefix("A.dense.h.") for k in cases if k.startswith("A.dense.h.")]
    for name in names:
        net.get_submodule(name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, o))
    with torch.no_grad():
        net(cases["A.x"], cases["A.t"], lq=cases["A.lq"])
    for name in names:
        torch.testing.assert_close(seen[name], cases[f"A.dense.h.{name}"], **NET_TOL, msg=name)


@pytest.mark.parametrize("weights", ["asbuilt", "dense"])
def test_small_vq_golden(weights):
    vq, cases = build_small_vq(weights), load_pt("vq_small_cases.pt")
    with torch.no_grad():
        torch.testing.assert_close(vq.encode(cases["image"]), cases[f"encode.{weights}"], **NET_TOL)
        for source, latent in (("encode", cases[f"encode.{weights}"]), ("random", cases["latent_random"])):
            golden = cases[f"decode_of_{source}.indices.{weights}"]
            with golden_ties(vq, golden, cases[f"decode_of_{source}.index_margin_f64.{weights}"]):
                zq, idx = vq.quantize(latent)
                decoded = vq.decode(latent)
            assert torch.equal(idx, golden)
            torch.testing.assert_close(zq, cases[f"decode_of_{source}.zq.{weights}"], atol=0, rtol=0)
            torch.testing.assert_close(decoded, cases[f"decode_of_{source}.{weights}"], atol=5e-5, rtol=1e-4)
        torch.testing.assert_close(
            vq.decode(cases[f"encode.{weights}"], force_not_quantize=True),
            cases[f"decode_unquantized_of_encode.{weights}"],
            **NET_TOL,
        )


def test_vq_decode_is_straight_through():
    vq = build_small_vq("dense")
    for p in vq.parameters():
        p.requires_grad_(False)
    z = load_pt("vq_small_cases.pt")["latent_random"].clone().requires_grad_(True)
    vq.decode(z).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
