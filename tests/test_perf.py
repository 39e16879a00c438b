"""Fast paths of the ResShift-family sampler equal the reference (fp32 eager, chop_bs=1) path within
the tolerances of docs/performance.md; small random-weight networks, CPU (bf16 autocast: CUDA only)."""
from __future__ import annotations

import copy
import time

import pytest
import torch

from sr.diffusion import DIFIISR_T15, ResShiftDiffusion
from sr.nn import UNetModelSwin, VQModelTorch
from sr.sampler import ResShiftSampler

# Documented tolerances (docs/performance.md, "Tolerances"): max abs difference of [0,1] outputs.
TOL_CHOP_BS = 1e-5
TOL_CHANNELS_LAST = 1e-5
TOL_COMPILE = 1e-4
TOL_BF16_MEAN, TOL_BF16_MAX = 1e-2, 0.25  # CUDA bf16 autocast vs fp32 (untested here: no GPU lent)


def _densify(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-draw constant-at-build parameters (zero-init convs, GroupNorm 1/0) so every path matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.numel() and bool((p == p.flatten()[0]).all()):
                scale = 0.1 if p.ndim == 1 else p[0].numel() ** -0.5
                p.add_(scale * torch.randn(p.shape, generator=g))
    return module.eval().requires_grad_(False)


def small_nets():
    torch.manual_seed(0)
    unet = UNetModelSwin(image_size=32, in_channels=6, model_channels=32, out_channels=3, cond_lq=True,
                         attention_resolutions=[32, 16], channel_mult=[1, 2], num_res_blocks=[1, 1],
                         num_head_channels=8, swin_depth=2, swin_embed_dim=32, window_size=8, mlp_ratio=2)
    vq = VQModelTorch(ddconfig={"double_z": False, "z_channels": 3, "resolution": 64, "in_channels": 3, "out_ch": 3,
                                    "ch": 32, "ch_mult": [1, 2, 4], "num_res_blocks": 1, "attn_resolutions": [],
                                    "dropout": 0.0}, n_embed=64, embed_dim=3)
    return _densify(unet, 1), _densify(vq, 2)


@pytest.fixture(scope="module")
def nets():
    return small_nets()


@pytest.fixture(scope="module")
def diffusion():
    return ResShiftDiffusion.from_config(DIFIISR_T15)


def _lr(h=40, w=36, b=1):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(3))


def _sampler(nets, diffusion, **kw):
    unet, vq = nets
    kw = {"pad_multiple": 8, "chop_size": 16, "chop_stride": 12, **kw}
    return ResShiftSampler(unet, vq, diffusion, **kw)


def test_tiles_are_batched_and_chop_bs_does_not_change_results(nets, diffusion):
    lr = _lr()
    ref = _sampler(nets, diffusion, chop_bs=1)
    fast = _sampler(nets, diffusion, chop_bs=4)
    batches = []
    inner = fast._model

    def counting(x, t, **k):
        batches.append(x.shape[0])
        return inner(x, t, **k)
    fast._model = counting
    a, b = ref(lr), fast(lr)
    assert batches and max(batches) == 4  # 9 tiles -> 4 + 4 + 1
    assert sum(batches) == 9
    assert (a - b).abs().max().item() <= TOL_CHOP_BS


def test_channels_last_matches_contiguous(nets, diffusion):
    lr = _lr(24, 20, b=2)
    ref = _sampler(nets, diffusion)(lr)
    cl_nets = tuple(copy.deepcopy(n) for n in nets)
    sampler = _sampler(cl_nets, diffusion, channels_last=True)
    assert next(cl_nets[0].parameters()).ndim and cl_nets[0].input_blocks[0][0].weight.is_contiguous(
        memory_format=torch.channels_last)
    assert (sampler(lr) - ref).abs().max().item() <= TOL_CHANNELS_LAST
    sampler.configure(channels_last=False)
    assert cl_nets[0].input_blocks[0][0].weight.is_contiguous()


def test_shift_masks_are_cached_per_size(nets, diffusion):
    unet, _ = nets
    _sampler(nets, diffusion)(_lr(16, 16))
    blocks = [m for m in unet.modules() if getattr(m, "shift", 0)]
    assert blocks
    before = [dict(b._mask_cache) for b in blocks]
    _sampler(nets, diffusion)(_lr(16, 16))
    for b, cache in zip(blocks, before):
        assert all(b._mask_cache[k] is v for k, v in cache.items())


def test_quantizer_chunking_gives_identical_codes(nets):
    _, vq = nets
    z = torch.randn(2, 3, 20, 12, generator=torch.Generator().manual_seed(5)) * 0.05
    whole = vq.quantize.indices(z)
    vq.quantize.chunk_rows = 7
    try:
        assert torch.equal(vq.quantize.indices(z), whole)
    finally:
        del vq.quantize.chunk_rows  # back to the class default


def test_compile_falls_back_to_eager_with_a_reason(nets, diffusion, monkeypatch, caplog):
    def broken(fn, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("inductor: no C++ compiler")
        return call
    monkeypatch.setattr(torch, "compile", broken)
    lr = _lr(16, 16)
    ref = _sampler(nets, diffusion)(lr)
    sampler = _sampler(nets, diffusion, compile=True)
    out = sampler(lr)
    assert torch.equal(out, ref)
    status = sampler.compile_status()
    assert all(v.startswith("eager (RuntimeError: inductor: no C++ compiler") for v in status.values()), status
    assert "running eager" in caplog.text


@pytest.mark.slow
def test_compile_matches_eager(nets, diffusion):
    lr = _lr(16, 16)
    ref = _sampler(nets, diffusion)(lr)
    sampler = _sampler(nets, diffusion, compile=True)
    t0 = time.perf_counter()
    out = sampler(lr)
    status = sampler.compile_status()
    if any(v != "compiled" for v in status.values()):
        pytest.skip(f"torch.compile not available here: {status}")
    if time.perf_counter() - t0 > 300:
        pytest.skip("compile took over 300 s on this machine")
    assert (out - ref).abs().max().item() <= TOL_COMPILE


@pytest.mark.gpu
def test_bf16_autocast_within_documented_tolerance(nets, diffusion):
    lr = _lr(24, 20, b=2).cuda()
    gpu = tuple(copy.deepcopy(n).cuda() for n in nets)
    ref = ResShiftSampler(gpu[0], gpu[1], diffusion, pad_multiple=8)(lr)
    fast = ResShiftSampler(gpu[0], gpu[1], diffusion, pad_multiple=8, amp_dtype=torch.bfloat16)(lr)
    diff = (fast - ref).abs()
    assert diff.mean().item() <= TOL_BF16_MEAN and diff.max().item() <= TOL_BF16_MAX


def test_perf_measure_row_in_process():
    from benchmarks.perf import measure

    row = measure({"method": "bicubic", "size": "16x12", "batch": 2, "dtype": "fp32", "variant": "eager", "device": "cpu",
                       "random_weights": False, "warmup": 1, "repeat": 3})
    assert row["status"] == "ok" and row["latency_s"] > 0 and row["images_per_s"] > 0
    skipped = measure({"method": "bicubic", "size": "16x12", "batch": 1, "dtype": "bf16", "variant": "eager",
                           "device": "cpu", "random_weights": False, "warmup": 0, "repeat": 1})
    assert skipped["status"] == "skipped"


def test_stage_timer_counts_outer_block_once():
    from benchmarks import timing

    timing.reset()
    with timing.stage("sr"), timing.stage("sr"):
        time.sleep(0.01)
    secs, calls = timing.totals()["sr"]
    assert calls == 1 and secs >= 0.01
    timing.reset()
