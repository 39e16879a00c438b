"""The official DifIISR sampler side by side with the project's ``difiisr``: same weights, same LR, same noise.

    python -m benchmarks.speed.perf --official-repo PATH [--sizes 256x192] [--device cuda] [--precisions fp32,mixed]

``PATH`` is a checkout of zirui0625/DifIISR (for tests: ``../shared/reference/official_difiisr``). It is
imported from there, never copied. Its ``sampler.py`` builds on CUDA only and needs opencv, so the
official modules are built here directly from its ``configs/DifIISR_test.yaml`` (``models.unet``,
``ldm.models.autoencoder``, ``models.script_util``), and the one-step output is what its
``DifIISRSampler.sample_func`` computes with ``inference.py``'s settings: reflect-pad to a multiple of
64, ``ddim_sample_loop(one_step=True)`` with the VQ autoencoder, crop, clamp. Both sides get the same
random dense weights (constant-at-build entries re-drawn, a dense codebook: every path matters) and the
prior noise the project's sampler draws. The official modules need einops and timm.

Rows: the official sampler as shipped (``inference.py``: fp16 UNet torso and fp16 autoencoder; CUDA
only), the official sampler in fp32, and the project with each precision policy of ``--precisions``;
latency median (ms), peak memory (GiB; CUDA only: in one process the CPU peak RSS of a later row would
reuse an earlier row's buffers), max / mean absolute difference of the [-1, 1] output against the
project's fp32 output, and the speedup over the official sampler as shipped (fp32 on CPU). Timed by
``benchmarks.speed.timing.time_calls``; column names and units are ``benchmarks.speed.timing``'s.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.speed import timing as T
from sr.errors import UserError
from sr.safeparse import read_yaml_file

COLUMNS = [
    "path",
    T.COL_SIZE,
    T.COL_DEVICE,
    T.COL_STATUS,
    T.COL_LATENCY_MS,
    T.COL_PEAK_GIB,
    T.COL_SPEEDUP,
    T.COL_MAX_ABS_DIFF,
    T.COL_MEAN_ABS_DIFF,
    T.COL_REPEATS,
    T.COL_NOTE,
]
#: reduced widths for CI (same depth and layout as the official networks, 4.7 M + 3.5 M parameters)
SMALL = {"unet": {"model_channels": 32, "num_head_channels": 8, "swin_embed_dim": 32}, "vq": {"ch": 32}}
#: what every number of a side by side (and of the precision study) is made with: deviations depend on it
WEIGHTS_CAVEAT = "random dense weights in the official layout, not the released checkpoints"
CONFIG = "configs/DifIISR_test.yaml"
PAD = 64  # inference.py's desired_min_size


def densify_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-draw the entries that are constant at build (GroupNorm 1/0, zero-init convs) as value + s N(0, 1)
    (s = fan_in^-0.5 for weights, 0.1 for 1-D) in state-dict order, and give a VQ codebook 0.5 N(0, 1)
    codes instead of the near-identical U(-1/n, 1/n) ones (the conformance kit's dense rule)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.state_dict(keep_vars=True).items():
            if not p.is_floating_point() or not p.numel():
                continue
            if name.endswith("quantize.embedding.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif bool((p == p.flatten()[0]).all()):
                scale = 0.1 if p.ndim == 1 else p[0].numel() ** -0.5
                p.add_(scale * torch.randn(p.shape, generator=g))
    return module.eval().requires_grad_(False)


def build_difiisr(arch: str, device: torch.device | str, seed: int = 0):
    """``difiisr`` with random dense official-layout weights (the kit's dense rule, :func:`densify_`), the same for a
    given ``seed`` in every process and whatever ran before in it; ``arch='small'``: reduced widths for CI."""
    from sr.registry import load_method

    opts: dict[str, Any] = {"random_weights": True, "device": str(device)}
    if arch == "small":
        from sr.methods.resshift import UNET_PRESETS, VQ_PRESETS

        vq = {**VQ_PRESETS["vq_f4"], "ddconfig": {**VQ_PRESETS["vq_f4"]["ddconfig"], **SMALL["vq"]}}
        opts.update(unet={**UNET_PRESETS["x4"], **SMALL["unet"]}, vq=vq)
    with torch.random.fork_rng(devices=[]):  # the same networks whatever ran before in this process
        torch.manual_seed(seed)  # the layers' default initialisation draws from the global generator
        method = load_method("difiisr", **opts)
    densify_(method.unet, seed + 1)
    densify_(method.first, seed + 2)
    return method


def official_config(repo: Path, arch: str) -> dict[str, Any]:
    """The official test YAML (plain YAML, no omegaconf), widths reduced when ``arch == 'small'``."""
    path = repo / CONFIG
    if not path.is_file():
        raise UserError(f"--official-repo {repo}: {CONFIG} not found (expected a checkout of zirui0625/DifIISR)")
    cfg = read_yaml_file(path)
    if arch == "small":
        cfg["model"]["params"].update(SMALL["unet"])
        cfg["autoencoder"]["params"]["ddconfig"].update(SMALL["vq"])
    return cfg


@contextlib.contextmanager
def official_imports(repo: Path):
    """Import the official packages (``models``, ``ldm``, ...) from ``repo`` while the block runs;
    afterwards they leave ``sys.modules`` and ``sys.path`` again so nothing else sees its top-level names."""
    before = set(sys.modules)
    sys.path.insert(0, str(repo))

    def load(target: str):
        module, name = target.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)

    try:
        yield load
    except ImportError as exc:
        raise UserError(
            f"--official-repo {repo}: cannot import the official code ({exc}); it needs einops and timm"
        ) from None
    finally:
        sys.path.remove(str(repo))
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(repo)):
                del sys.modules[name]


class Official:
    """The official networks and diffusion, callable like its ``sample_func`` (one step, ddim=True)."""

    def __init__(self, cfg: dict[str, Any], load, device: torch.device):
        self.diffusion = load(cfg["diffusion"]["target"])(**cfg["diffusion"]["params"])
        self.unet = load(cfg["model"]["target"])(**cfg["model"]["params"]).to(device).eval()
        self.vq = load(cfg["autoencoder"]["target"])(**cfg["autoencoder"]["params"]).to(device).eval()
        self.sf = cfg["diffusion"]["params"]["sf"]

    def as_shipped(self) -> None:
        """inference.py: ``use_fp16=True`` (UNet torso in fp16) and the autoencoder's ``use_fp16: True``."""
        self.unet.dtype = torch.float16
        self.unet.convert_to_fp16()
        self.vq.half()

    @torch.no_grad()
    def __call__(self, lr_01: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        y0 = (lr_01 - 0.5) / 0.5
        h, w = y0.shape[-2:]
        y0 = F.pad(y0, (0, -w % PAD, 0, -h % PAD), mode="reflect")
        out = self.diffusion.ddim_sample_loop(
            y=y0,
            model=self.unet,
            noise=noise,
            first_stage_model=self.vq,
            clip_denoised=False,
            model_kwargs={"lq": y0},
            one_step=True,
        )
        return out[..., : h * self.sf, : w * self.sf].clamp_(-1.0, 1.0)


def side_by_side(
    repo: str | Path,
    size: str = "64x64",
    device: str = "cpu",
    precisions: tuple[str, ...] = ("fp32",),
    arch: str = "full",
    warmup: int = 1,
    repeat: int = 3,
    seed: int = 0,
    tf32: bool = True,
) -> list[dict[str, Any]]:
    """Time the official sampler and the project's ``difiisr`` on one seeded LR frame (``size`` = WxH).
    ``tf32=False``: strict fp32 on CUDA (``sr.runtime.set_tf32``), so the fp32 outputs compare at CPU precision."""
    from sr.runtime import set_tf32

    set_tf32(tf32)
    repo = Path(repo).expanduser().resolve()
    dev = torch.device(device)
    cfg = official_config(repo, arch)
    with official_imports(repo) as load:
        return _compare(cfg, load, dev, size, precisions, arch, warmup, repeat, seed)


def _project(cfg, official, lr, dev, precisions, arch, warmup, repeat, seed):
    """Build ``difiisr`` (:func:`build_difiisr`), copy its weights into the official networks, time each policy;
    returns (rows, outputs, the prior noise of the project's first tile draw)."""
    ours = build_difiisr(arch, dev, seed)
    official.unet.load_state_dict(ours.unet.state_dict(), strict=True)
    official.vq.load_state_dict(ours.first.state_dict(), strict=True)
    h, w = lr.shape[-2:]
    latent = (1, cfg["autoencoder"]["params"]["embed_dim"], -(-h // PAD) * PAD, -(-w // PAD) * PAD)
    noise = torch.randn(latent, generator=torch.Generator(device=dev).manual_seed(ours.sampler.seed), device=dev)
    rows, outputs = [], {}
    for policy in dict.fromkeys(("fp32", *precisions)):
        ours.sampler.configure(precision=T.policy(policy))
        t = T.time_calls(lambda: ours.sampler(lr) * 2 - 1, dev, warmup, repeat)
        outputs[f"project {policy}"] = t.output
        rows.append(
            {
                "path": f"project {policy}",
                T.COL_STATUS: "ok",
                T.COL_LATENCY_MS: t.median_ms,
                T.COL_PEAK_GIB: t.peak_gib,
                T.COL_NOTE: "precision policy (sr.sampler.PRECISIONS)",
            }
        )
    return rows, outputs, noise


def _compare(cfg, load, dev, size, precisions, arch, warmup, repeat, seed) -> list[dict[str, Any]]:
    official = Official(cfg, load, dev)
    w, h = T.parse_size(size)
    lr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)).to(dev)
    base = {T.COL_SIZE: size, T.COL_DEVICE: str(dev), T.COL_REPEATS: repeat}
    rows, outputs, noise = _project(cfg, official, lr, dev, precisions, arch, warmup, repeat, seed)
    rows = [{**base, **r} for r in rows]
    if dev.type == "cuda":
        fp32_state = {
            part: {k: v.clone() for k, v in net.state_dict().items()}
            for part, net in (("unet", official.unet), ("vq", official.vq))
        }
        official.as_shipped()
        t = T.time_calls(lambda: official(lr, noise), dev, warmup, repeat)
        outputs["official as shipped (fp16)"] = t.output.float()
        rows.append(
            {
                **base,
                "path": "official as shipped (fp16)",
                T.COL_STATUS: "ok",
                T.COL_LATENCY_MS: t.median_ms,
                T.COL_PEAK_GIB: t.peak_gib,
                T.COL_NOTE: "inference.py: fp16 UNet torso + fp16 autoencoder",
            }
        )
        official = Official(cfg, load, dev)
        official.unet.load_state_dict(fp32_state["unet"])
        official.vq.load_state_dict(fp32_state["vq"])
    else:
        rows.append(
            {
                **base,
                "path": "official as shipped (fp16)",
                T.COL_STATUS: "skipped",
                T.COL_NOTE: "inference.py's fp16 path needs CUDA",
            }
        )
    t = T.time_calls(lambda: official(lr, noise), dev, warmup, repeat)
    outputs["official fp32"] = t.output
    rows.append(
        {
            **base,
            "path": "official fp32",
            T.COL_STATUS: "ok",
            T.COL_LATENCY_MS: t.median_ms,
            T.COL_PEAK_GIB: t.peak_gib,
            T.COL_NOTE: "",
        }
    )

    ref = outputs["project fp32"]
    ok = [r for r in rows if r[T.COL_STATUS] == "ok"]
    baseline = next(r[T.COL_LATENCY_MS] for r in ok if r["path"].startswith("official"))
    for row in ok:
        diff = (outputs[row["path"]] - ref).abs()
        row.update(
            {
                T.COL_LATENCY_MS: round(row[T.COL_LATENCY_MS], 3),
                T.COL_PEAK_GIB: round(row[T.COL_PEAK_GIB], 4),
                T.COL_SPEEDUP: round(baseline / row[T.COL_LATENCY_MS], 3),
                T.COL_MAX_ABS_DIFF: float(f"{diff.max().item():.3g}"),
                T.COL_MEAN_ABS_DIFF: float(f"{diff.mean().item():.3g}"),
                T.COL_NOTE: "; ".join(filter(None, [row[T.COL_NOTE], WEIGHTS_CAVEAT])),
            }
        )
    return [{c: r.get(c, "") for c in COLUMNS} for r in rows]
