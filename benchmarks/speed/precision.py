"""Where the half-precision deviation of one-step DifIISR comes from: VQ code flips or continuous error.

    python -m benchmarks.speed.precision --arch full --sizes 64x64 --codebooks dense,fitted,uniform \\
        --frames ../shared/data/m3fd/lr_x4_difiisr --out DIR

The VQ decoder quantises the UNet's x0 prediction (the quantiser's input) to the nearest of 8,192 codes,
so an output differs from fp32 in two ways only: positions whose code flips because the UNet or the
encoder ran in low precision, and the decoder's own rounding (the continuous latent error of unflipped
positions is removed by the quantiser). Per precision policy and codebook the rows give the output's
max / mean |difference| against fp32 ([-1, 1]), the share of changed codes, the difference on pixels whose
code did not change, the decoder alone (the policy's decoder on fp32's codes) and the flips alone (the
policy's output against that), and the latent error against each position's distance to its Voronoi
boundary (a code can flip only where the error exceeds it).

Codebooks: ``dense`` is the conformance kit's 0.5 N(0, 1) rule (what ``benchmarks.speed.official`` uses);
``uniform`` the as-built U(-1/n, 1/n) (every code nearly equal: flips change nothing, but the decoder then
normalises a near-constant input, which amplifies its rounding); ``fitted`` is Lloyd's k-means on the fp32
quantiser inputs of held-out frames, so codes are spread like the latents they quantise, as a trained
codebook is. Random dense weights give tie-prone distances in any case: the real checkpoint's codebook and
its latents are not available offline.

On CPU the study runs CPU autocast with CUDA autocast's numerics at fp32 speed
(:class:`CudaAutocastOnCpu`): CPU bf16/fp16 convolutions are hundreds of times slower than fp32 on CPUs
without native support. On CUDA the real autocast runs.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from benchmarks.speed import timing as T
from benchmarks.speed.official import WEIGHTS_CAVEAT, build_difiisr
from sr import cli
from sr.atomic import atomic_write_text
from sr.cli import cli_entry
from sr.ownership import add_overwrite_option, claim_folder

LOW = (torch.bfloat16, torch.float16)
_A = torch.ops.aten
#: ops autocast runs in low precision (both CPU and CUDA lists): emulated as fp32 maths on the rounded inputs
_GEMM = {
    _A.conv2d,
    _A.convolution,
    _A._convolution,
    _A.linear,
    _A.matmul,
    _A.mm,
    _A.addmm,
    _A.bmm,
    _A.baddbmm,
    _A.scaled_dot_product_attention,
}
#: ops CUDA autocast runs in fp32 but CPU autocast leaves in the input's low dtype
_CUDA_FP32 = {_A.group_norm, _A.native_group_norm, _A.layer_norm, _A.native_layer_norm, _A.softmax, _A._softmax}
#: the policies of the study: everything low, one part low at a time, and ``mixed``
POLICIES = (
    "bf16",
    "fp16",
    '{"encode":"bf16","unet":"bf16"}',
    '{"unet":"bf16"}',
    '{"encode":"fp16"}',
    '{"decode":"bf16"}',
    "mixed",
)
CODEBOOKS = ("dense", "fitted", "uniform")


class CudaAutocastOnCpu(TorchDispatchMode):
    """Inside CPU autocast, give CUDA autocast's numerics at fp32 speed.

    Low-precision GEMMs, convolutions and attention are computed in fp32 from their (already rounded)
    low-precision inputs and rounded once to the low dtype, as fp32-accumulating GPU kernels do; GroupNorm,
    LayerNorm and softmax return fp32 as on CUDA (CPU autocast keeps them low). Everything else (elementwise
    ops on low-precision tensors) is CPU autocast as it is."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if packet not in _GEMM and packet not in _CUDA_FP32:
            return func(*args, **kwargs)
        low = next((t.dtype for t in (*args, *kwargs.values()) if torch.is_tensor(t) and t.dtype in LOW), None)
        if low is None:
            return func(*args, **kwargs)

        def up(t):
            return t.float() if torch.is_tensor(t) and t.dtype in LOW else t

        out = func(*tree_map(up, args), **tree_map(up, kwargs))
        if packet in _CUDA_FP32:
            return out
        return tree_map(lambda t: t.to(low) if torch.is_tensor(t) and t.is_floating_point() else t, out)


def boundary_distance(z: torch.Tensor, codes: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per position of ``z`` (B, C, H, W): distance to the nearest Voronoi boundary of its nearest code,
    ``min_j (|z - e_j|^2 - |z - e_1|^2) / (2 |e_j - e_1|)`` (0 on a tie). (B, H, W), fp64 maths."""
    b, c, h, w = z.shape
    flat, emb = z.permute(0, 2, 3, 1).reshape(-1, c).double(), codes.double()
    out = []
    for f in flat.split(chunk):
        d2 = torch.cdist(f, emb).pow(2)
        best = d2.argmin(dim=1)
        gap = d2 - d2.gather(1, best[:, None])
        sep = (emb[None] - emb[best][:, None]).norm(dim=2)
        gap[sep == 0] = math.inf  # the code itself (and exact duplicates) bounds nothing
        out.append((gap / (2 * sep)).min(dim=1).values)
    return torch.cat(out).view(b, h, w).float()


def fit_codebook(points: torch.Tensor, n: int, iters: int = 10, seed: int = 0, chunk: int = 8192) -> torch.Tensor:
    """Lloyd's k-means of ``points`` (N, C) into ``n`` codes on the points' device, started from ``n`` distinct
    random points (with replacement and a small jitter when N < n); an empty cluster keeps its code."""
    g = torch.Generator().manual_seed(seed)
    points = points.float()
    pick = torch.randperm(len(points), generator=g)[:n] if len(points) >= n else torch.randint(len(points), (n,))
    codes = points[pick.to(points.device)].clone()
    if len(points) < n:
        codes += 1e-3 * points.std(0) * torch.randn(codes.shape, generator=g).to(points.device)
    for _ in range(iters):
        idx = torch.cat([torch.cdist(p, codes).argmin(dim=1) for p in points.split(chunk)])
        sums = torch.zeros_like(codes).index_add_(0, idx, points)
        count = torch.bincount(idx, minlength=n).float()[:, None]
        codes = torch.where(count > 0, sums / count.clamp(min=1), codes)
    return codes


def set_codebook(vq: torch.nn.Module, kind: str, points: torch.Tensor | None = None, seed: int = 0) -> None:
    emb = vq.quantize.embedding.weight
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if kind == "dense":
            new = 0.5 * torch.randn(emb.shape, generator=g)
        elif kind == "uniform":
            new = (torch.rand(emb.shape, generator=g) * 2 - 1) / emb.shape[0]
        elif kind == "fitted":
            if points is None:
                raise ValueError("the fitted codebook needs the quantiser inputs of held-out frames")
            new = fit_codebook(points, emb.shape[0], seed=seed)
        else:
            raise ValueError(f"codebook must be one of {CODEBOOKS}, got {kind!r}")
        emb.copy_(new.to(emb))


def _autocast_scope(device: torch.device, emulate: bool):
    return CudaAutocastOnCpu() if emulate and device.type == "cpu" else contextlib.nullcontext()


class _Captured(Exception):
    """Raised by the decode hook: only the quantiser's input is wanted."""


def quantiser_input(sampler, lr01: torch.Tensor, policy, emulate: bool) -> torch.Tensor:
    """The UNet's x0 prediction (the quantiser's input) of one sampler call under ``policy``."""
    captured: list[torch.Tensor] = []
    inner = sampler._decode

    def capture(z):
        captured.append(z)
        raise _Captured

    sampler.configure(precision=policy)
    sampler._decode = capture
    try:
        with _autocast_scope(lr01.device, emulate):
            sampler(lr01)
    except _Captured:
        pass
    finally:
        sampler._decode = inner
    return captured[-1]


def decode(sampler, z: torch.Tensor, policy, emulate: bool, hw: tuple[int, int]) -> torch.Tensor:
    """The sampler's tail under ``policy``: quantise + decode ``z``, crop to ``hw``, clamp ([-1, 1])."""
    sampler.configure(precision=policy)
    with torch.inference_mode(), _autocast_scope(z.device, emulate):
        return sampler._decode(z)[..., : hw[0], : hw[1]].clamp(-1.0, 1.0)


def _stats(prefix: str, diff: torch.Tensor) -> dict[str, float]:
    top, mean = (diff.max().item(), diff.mean().item()) if diff.numel() else (math.nan, math.nan)
    return {prefix + T.COL_MAX_ABS_DIFF: top, prefix + T.COL_MEAN_ABS_DIFF: mean}


def study(
    method, lr01: torch.Tensor, policies: list[str], codebook: str, emulate: bool, latents: dict | None = None
) -> list[dict[str, Any]]:
    """Rows of the decomposition for one codebook (already set on ``method``'s VQ). ``latents`` keeps the
    quantiser inputs per (encoder, UNet) dtypes across calls (they do not depend on the codebook)."""
    sampler, quantize = method.sampler, method.first.quantize
    latents = {} if latents is None else latents
    hw = (lr01.shape[-2] * sampler.sf, lr01.shape[-1] * sampler.sf)
    vq_factor = 2 ** (len(method.first.encoder.down) - 1)  # latent position -> pixels of the output

    def z_of(policy) -> torch.Tensor:
        dtypes = policy_dtypes(policy)
        key = (dtypes["encode"], dtypes["unet"])
        if key not in latents:
            latents[key] = quantiser_input(sampler, lr01, policy, emulate)
        return latents[key]

    z_ref = z_of("fp32")
    ref = decode(sampler, z_ref, "fp32", emulate, hw)
    codes_ref = quantize.indices(z_ref)
    margin = boundary_distance(z_ref, quantize.embedding.weight)
    decoder_only: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for name in policies:
        policy = T.policy(name)
        z = z_of(policy)
        dec = policy_dtypes(policy)["decode"]
        if dec not in decoder_only:
            decoder_only[dec] = decode(sampler, z_ref, policy, emulate, hw)
        out = decoder_only[dec] if z is z_ref else decode(sampler, z, policy, emulate, hw)
        changed = quantize.indices(z) != codes_ref
        up = changed.repeat_interleave(vq_factor, 1).repeat_interleave(vq_factor, 2)
        same_px = ~up[:, None, : hw[0], : hw[1]].expand_as(out)
        diff = (out - ref).abs()
        err = (z - z_ref).norm(dim=1)
        rows.append(
            {
                "codebook": codebook,
                T.COL_PRECISION: name,
                **_stats("", diff),
                "codes_changed_pct": 100 * changed.float().mean().item(),
                **_stats("unchanged_px_", diff[same_px]),
                **_stats("decoder_only_", (decoder_only[dec] - ref).abs()),
                **_stats("flips_only_", (out - decoder_only[dec]).abs()),
                "latent_err_median": err.median().item(),
                "latent_err_max": err.max().item(),
                "margin_median": margin.median().item(),
                "at_risk_pct": 100 * (err > margin).float().mean().item(),
                "meets_goal": diff.max().item() <= GOAL_MAX and diff.mean().item() <= GOAL_MEAN,
            }
        )
    return rows


def policy_dtypes(policy) -> dict[str, str]:
    """``{part: 'fp32' | 'bfloat16' | 'float16'}`` of a policy name or mapping."""
    from sr.sampler import resolve_precision

    return {k: str(v).replace("torch.", "") if v else "fp32" for k, v in resolve_precision(policy, "cpu").items()}


def load_frames(folder: str | None, size: str, count: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` LR frames of ``size`` (WxH): centre crops of the sorted PNGs in ``folder`` (3 channels in
    [0, 1]), or seeded uniform noise when no folder is given."""
    w, h = T.parse_size(size)
    if folder is None:
        return [torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed + i)) for i in range(count)]
    from downstream.imageio import read_image

    files = sorted(Path(folder).glob("*.png"))
    frames = []
    for path in files:
        arr = torch.from_numpy(read_image(path, channels=3)).permute(2, 0, 1)[None]
        if arr.shape[-2] < h or arr.shape[-1] < w:
            continue
        top, left = (arr.shape[-2] - h) // 2, (arr.shape[-1] - w) // 2
        frames.append(arr[..., top : top + h, left : left + w].float().contiguous())
    if len(frames) < count:
        raise cli.UsageError(f"--frames {folder}: {len(frames)} PNG frames of at least {size}, need {count}")
    return frames[:count]


#: the accuracy goal of the fast path: the official fp16 sampler's own deviation from fp32 ([-1, 1] output)
GOAL_MAX, GOAL_MEAN = 0.04, 0.002


def codebook_study(
    method, frames: list[torch.Tensor], policies: list[str], codebooks: list[str], emulate: bool
) -> list[dict[str, Any]]:
    """:func:`study` of ``frames[0]`` for every codebook; ``fitted`` is fitted to the fp32 quantiser inputs
    of ``frames[1:]``. The method's codebook is left as the last one set."""
    device = next(method.unet.parameters()).device
    lr = frames[0].to(device)
    latents: dict = {}
    rows: list[dict[str, Any]] = []
    for codebook in codebooks:
        points = None
        if codebook == "fitted":
            z = torch.cat([quantiser_input(method.sampler, f.to(device), "fp32", emulate) for f in frames[1:]])
            points = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        set_codebook(method.first, codebook, points)
        size = f"{lr.shape[-1]}x{lr.shape[-2]}"
        rows += [{T.COL_SIZE: size, **r} for r in study(method, lr, policies, codebook, emulate, latents)]
    return rows


def caveats(emulate: bool, real_frames: bool) -> str:
    parts = [WEIGHTS_CAVEAT, "one frame"]
    if emulate:
        parts.append(
            "CPU: CUDA autocast numerics emulated (low-precision GEMMs/convolutions/attention in fp32 from rounded "
            "inputs, output rounded; GroupNorm/LayerNorm/softmax in fp32)"
        )
    if not real_frames:
        parts.append("seeded noise frames")
    return "; ".join(parts)


def markdown(rows: list[dict[str, Any]], note: str) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    shown = [{k: f"{v:.3g}" if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    return f"{T.markdown(shown, cols)}\n\nCaveats: {note}.\n"


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.speed.precision", description=__doc__.split("\n\n")[0])
    p.add_device()
    T.add_options(p, sizes_default="64x64", precisions_default=",".join(POLICIES), out_csv=False, arch=True)
    p.add_argument("--frames", default=None, help="folder of LR PNGs (first = studied, the rest fit the codebook)")
    p.add_argument("--fit-frames", type=cli.positive_int, default=6, help="held-out frames for the fitted codebook")
    p.add_argument(
        "--codebooks", type=cli.names_from(CODEBOOKS), default=list(CODEBOOKS), help=f"subset of {','.join(CODEBOOKS)}"
    )
    p.add_argument(
        "--emulate",
        choices=("auto", "off"),
        default="auto",
        help="CUDA autocast numerics on CPU (auto: with --device cpu; off: CPU autocast's own, very slow kernels)",
    )
    p.add_argument("--out", type=cli.out_dir, default=None, help="folder for precision.json / precision.md")
    add_overwrite_option(p)
    return p


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    emulate = args.emulate == "auto" and device.type == "cpu"
    if args.out:  # refused before any work when it is a user's folder
        claim_folder(args.out, "precision study", ("precision.json", "precision.md"), overwrite=args.overwrite)
    method = build_difiisr(args.arch, device)
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        frames = load_frames(args.frames, size, 1 + ("fitted" in args.codebooks) * args.fit_frames)
        rows += codebook_study(method, frames, args.precisions, args.codebooks, emulate)
    note = caveats(emulate, real_frames=args.frames is not None)
    if args.out:
        out = Path(args.out)
        atomic_write_text(out / "precision.json", json.dumps({"note": note, "rows": rows}, indent=1))
        atomic_write_text(out / "precision.md", markdown(rows, note))
    print(markdown(rows, note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
