"""The precision study's parts: the CPU emulation of CUDA autocast, the Voronoi margin, the decomposition of
an output's deviation into code flips and decoder rounding (benchmarks/speed/precision.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmarks.speed.official import build_difiisr
from benchmarks.speed.precision import (
    CudaAutocastOnCpu,
    boundary_distance,
    decode,
    fit_codebook,
    main,
    quantiser_input,
    study,
)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_emulation_matches_the_real_low_precision_kernels(dtype):
    """Convolutions and linear layers: the emulation (fp32 maths on rounded inputs, output rounded once) and
    CPU autocast's own kernels differ only where fp32 accumulation order moves a value across a rounding
    boundary (under 1 % of the values; on average a hundredth of the deviation from fp32 or less); GroupNorm
    and softmax come back in fp32 as on CUDA."""
    g = torch.Generator().manual_seed(0)
    conv, lin = torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Linear(64, 64)
    x, v = torch.randn(1, 32, 24, 24, generator=g), torch.randn(50, 64, generator=g)
    with torch.inference_mode():
        fp32 = (conv(x), lin(v))
        with torch.autocast("cpu", dtype=dtype):
            real = (conv(x), lin(v))
            with CudaAutocastOnCpu():
                emulated = (conv(x), lin(v))
                norm = F.group_norm(real[0], 8)
                soft = torch.softmax(real[1], -1)
    for a, b, ref in zip(real, emulated, fp32, strict=True):
        assert a.dtype == b.dtype == dtype
        off, dev = (a.float() - b.float()).abs(), (a.float() - ref).abs()
        assert (off > 0).float().mean() < 0.01 and off.mean() < 0.01 * dev.mean()
    assert norm.dtype == soft.dtype == torch.float32


def test_boundary_distance_hand_computed():
    codes = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    z = torch.tensor([[0.2, 0.0, 0.0], [0.5, 0.0, 0.0], [0.9, 0.1, 0.0]]).T.reshape(1, 3, 1, 3)
    # x = 0.5 is the boundary of codes 0 and 1; y = 1 that of codes 0 and 2; code 1 and 2: perpendicular bisector
    dist = boundary_distance(z, codes)[0, 0]
    assert dist[0].item() == pytest.approx(0.3)
    assert dist[1].item() == pytest.approx(0.0, abs=1e-7)
    assert dist[2].item() == pytest.approx(0.4)


def test_fit_codebook_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    points = (centres[:, None] + 0.05 * torch.randn(3, 200, 2, generator=g)).reshape(-1, 2)
    codes = fit_codebook(points, 3, iters=10, seed=1)
    assert torch.cdist(centres, codes).min(dim=1).values.max() < 0.05


@pytest.mark.slow  # about 70 s on 2 cores (the official depth at reduced widths, 256 x 256 output)
def test_decomposition_separates_decoder_rounding_from_code_flips():
    """The studied tail (quantiser input, then decode) rebuilds the sampler's output bit for bit; a policy
    with only the decoder in bf16 moves no code, everything in bf16 moves codes where the latent error
    exceeds the margin to the Voronoi boundary."""
    method = build_difiisr("small", "cpu")
    sampler = method.sampler
    lr = torch.rand(1, 3, 16, 12, generator=torch.Generator().manual_seed(1))
    z = quantiser_input(sampler, lr, "fp32", emulate=True)
    tail = decode(sampler, z, "fp32", True, (64, 48))
    assert torch.equal(tail * 0.5 + 0.5, sampler.configure(precision="fp32")(lr))

    latents = {("fp32", "fp32"): z}
    rows = study(method, lr, ["fp32", '{"decode":"bf16"}', "bf16"], "dense", True, latents)
    fp32, dec, bf16 = ({r["precision"]: r for r in rows}[k] for k in ("fp32", '{"decode":"bf16"}', "bf16"))
    assert fp32["max_abs_diff"] == fp32["codes_changed_pct"] == fp32["latent_err_max"] == 0
    # only the decoder in bf16: the quantiser's input is fp32's, no code moves, all of the error is the decoder's
    assert dec["codes_changed_pct"] == dec["flips_only_max_abs_diff"] == dec["latent_err_max"] == 0
    assert dec["max_abs_diff"] == dec["decoder_only_max_abs_diff"] > 0
    # everything in bf16: the UNet's error moves codes, and only where it exceeds the margin to the boundary
    assert bf16["codes_changed_pct"] > 0 and bf16["flips_only_max_abs_diff"] > 0
    assert bf16["at_risk_pct"] >= bf16["codes_changed_pct"]
    assert bf16["decoder_only_max_abs_diff"] == dec["decoder_only_max_abs_diff"]


def test_cli_rejects_an_unknown_codebook(capsys):
    assert main(["--codebooks", "dense,trained", "--arch", "small"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "trained" in err and "Traceback" not in err
