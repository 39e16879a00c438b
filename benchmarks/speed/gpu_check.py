"""One prepared GPU measurement run (estimated 8-10 minutes on an H100/H200), written as it goes to ``--out``.

    python -m benchmarks.speed.gpu_check --device cuda --official-repo ../shared/reference/official_difiisr \\
        --out "$OUT"

Sections, each guarded (a failure becomes a row with the reason; the table is rewritten after every
section, so a run cut short still leaves what it measured):

* ``env``: device name, torch / CUDA versions, which optional packages are present.
* ``precision``: one-step ``difiisr`` with random dense official-layout weights on one LR frame per
  ``--sizes`` entry (default 256x192 -> 1024x768; seeded noise, or the first of ``--frames``) for every
  policy of ``--precisions``: median latency, peak memory, the VQ encode / UNet / VQ decode split (median
  per timed call), and per ``--codebooks`` entry ``benchmarks.speed.precision``'s decomposition of the
  deviation from fp32: max / mean difference of the [-1, 1] output, share of changed VQ codes, the
  difference on pixels whose code did not change, the decoder alone (fp32's codes) and the flips alone,
  and ``meets_goal`` (max <= 0.04 and mean <= 0.002). These rows decide ``sr.sampler.AUTO_PRECISION``.
* ``compile``: ``torch.compile`` of ``--compile-precision`` (default ``mixed``): first-call build time,
  rebuild time from the inductor cache after ``torch._dynamo.reset()``, latency and difference against
  eager fp32, then the same with CUDA graphs (``compile="reduce-overhead"``).
* ``official``: ``benchmarks.speed.official.side_by_side`` (official sampler as shipped and fp32 next to the
  project's policies), when ``--official-repo`` is given and einops/timm import.
* ``stages``: frames/s of SR for every ResShift-family method and bicubic at M3FD (256x192 LR) and FMB
  (200x150 LR) shapes, of every quality metric at 1024x768 (needs pyiqa), and the projected paper grid
  (every registered method x M3FD test + FMB test) in device-hours for SR + quality metrics. Detection
  and segmentation are not timed here (they need ultralytics / mmsegmentation and their weights): run
  ``python -m benchmarks.speed.perf --stages --device cuda`` in a full environment for those.

The ``precision``, ``compile`` and ``official`` sections run once per ``--sizes`` entry. Every timing goes
through ``benchmarks.speed.timing.time_calls`` (``--warmup`` untimed calls, ``--repeat`` timed calls, CUDA
synchronised); times in ms, memory in GiB (peak allocated above what was in use before the calls: CUDA
only, ``nan`` on CPU), with ``benchmarks.speed.timing``'s column names. Random weights everywhere: the numbers
are speed and numerics, never quality. On CPU the same script runs at small sizes (``--sizes 64x64
--arch small``) so CI can check it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.speed import timing as T
from sr import cli
from sr.atomic import atomic_write_text
from sr.cli import cli_entry
from sr.ownership import add_overwrite_option, claim_folder

PAPER_FRAMES = {"m3fd": 840 + 40, "fmb": 280}  # M3FD test = 20 % of 4,200 (+ Set5/15/20); FMB official test list
STAGE_SHAPES = {"m3fd": (192, 256), "fmb": (150, 200)}  # LR (h, w): 1024x768 and 800x600 outputs
OPTIONAL = ("einops", "timm", "pyiqa", "ultralytics", "mmseg", "triton")


class Report:
    """Rows by section, rewritten to ``gpu_check.md`` / ``gpu_check.json`` after every section."""

    def __init__(self, out: Path):
        self.out, self.sections = out, {}
        out.mkdir(parents=True, exist_ok=True)

    def add(self, section: str, rows: list[dict[str, Any]]) -> None:
        self.sections.setdefault(section, []).extend(rows)
        atomic_write_text(self.out / "gpu_check.json", json.dumps(self.sections, indent=1, default=str))
        lines = ["# benchmarks.speed.gpu_check", ""]
        for name, rs in self.sections.items():
            cols = list(dict.fromkeys(k for r in rs for k in r))
            shown = [{c: _fmt(r.get(c, "")) for c in cols} for r in rs]
            lines += [f"## {name}", "", T.markdown(shown, cols), ""]
        atomic_write_text(self.out / "gpu_check.md", "\n".join(lines))
        print(f"[{section}] " + "; ".join(json.dumps(r, default=str) for r in rows), flush=True)


def _fmt(v: Any) -> str:
    """Floats to 4 significant digits, whole numbers from 10,000 up (milliseconds) without an exponent."""
    if not isinstance(v, float):
        return str(v)
    return f"{v:.0f}" if abs(v) >= 1e4 else f"{v:.4g}"


def section_env(args, device) -> list[dict[str, Any]]:
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = [
        {"item": "device", "value": name},
        {"item": "torch", "value": torch.__version__},
        {"item": "cuda", "value": torch.version.cuda or "none"},
        {"item": "cudnn.allow_tf32", "value": torch.backends.cudnn.allow_tf32},
    ]
    rows += [{"item": pkg, "value": "present" if importlib.util.find_spec(pkg) else "absent"} for pkg in OPTIONAL]
    return rows


def section_precision(args, device, size: str) -> list[dict[str, Any]]:
    """Latency per policy, then ``benchmarks.speed.precision``'s decomposition of its deviation from fp32 per codebook
    (changed codes, the difference on unchanged codes, the decoder alone, the flips alone)."""
    from benchmarks.speed.official import build_difiisr
    from benchmarks.speed.precision import caveats, codebook_study, load_frames

    method = build_difiisr(args.arch, device)
    sampler = method.sampler
    w, h = T.parse_size(size)
    frames = load_frames(args.frames, size, 1 + args.fit_frames * ("fitted" in args.codebooks))
    lr = frames[0].to(device)
    parts = T.time_parts(sampler, device)
    policies = list(dict.fromkeys(("fp32", *args.precisions)))
    timing = {}
    for policy in policies:
        sampler.configure(precision=T.policy(policy))
        t = T.time_calls(lambda: sampler(lr), device, args.warmup, args.repeat, parts=parts)
        timing[policy] = {
            T.COL_LATENCY_MS: t.median_ms,
            T.COL_PEAK_GIB: t.peak_gib,
            **{T.COL_PART_MS[k]: v for k, v in t.part_medians_ms().items()},
        }
    emulate = device.type == "cpu"  # CPU bf16/fp16 kernels are far too slow: CUDA numerics emulated
    rows = [
        {**r, T.COL_SIZE_OUT: f"{4 * w}x{4 * h}", **timing[r[T.COL_PRECISION]]}
        for r in codebook_study(method, frames, policies, args.codebooks, emulate)
    ]
    rows[0][T.COL_NOTE] = caveats(emulate, real_frames=args.frames is not None)
    return rows


def section_compile(args, device, size: str) -> list[dict[str, Any]]:
    import torch

    from benchmarks.speed.official import build_difiisr
    from sr.runtime import compile_cache_dir
    from sr.sampler import resolve_precision

    method = build_difiisr(args.arch, device)
    sampler = method.sampler
    w, h = T.parse_size(size)
    lr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    ref = sampler.configure(precision="fp32")(lr)
    policy = T.policy(args.compile_precision)
    sampler.configure(precision=policy, compile=True)
    rows = []
    for build in ("cold (first call)", "warm (inductor cache, after dynamo reset)"):
        first = T.time_calls(lambda: sampler(lr), device, warmup=0, repeat=1)
        rows.append(
            {
                "build": build,
                T.COL_SIZE: size,
                "build_ms": first.median_ms,
                T.COL_STATUS: json.dumps(sampler.compile_status()),
            }
        )
        if build.startswith("cold"):
            torch._dynamo.reset()
            sampler.configure(compile=False).configure(compile=True)
    resolved = {k: str(v).replace("torch.", "") for k, v in resolve_precision(policy, device).items()}
    for mode in ("default", "reduce-overhead"):
        if mode != "default":  # CUDA graphs on top of the same inductor build (elsewhere: the default mode)
            sampler.configure(compile=False).configure(compile=mode)
            first = T.time_calls(lambda: sampler(lr), device, warmup=0, repeat=1)
            rows.append({"build": f"{mode} (first call)", T.COL_SIZE: size, "build_ms": first.median_ms})
        t = T.time_calls(lambda: sampler(lr), device, 1, args.repeat)
        diff = (t.output - ref).abs() * 2  # [-1, 1] scale
        rows.append(
            {
                "build": f"{mode}: steady state",
                T.COL_SIZE: size,
                T.COL_PRECISION: json.dumps(resolved),
                T.COL_STATUS: json.dumps(sampler.compile_status()),
                T.COL_LATENCY_MS: t.median_ms,
                T.COL_PEAK_GIB: t.peak_gib,
                T.COL_MAX_ABS_DIFF: diff.max().item(),
                T.COL_MEAN_ABS_DIFF: diff.mean().item(),
                "cache_dir": str(compile_cache_dir()),
            }
        )
    return rows


def section_official(args, device, size: str) -> list[dict[str, Any]]:
    if not args.official_repo:
        return [{T.COL_STATUS: "skipped", T.COL_NOTE: "no --official-repo"}]
    missing = [m for m in ("einops", "timm") if importlib.util.find_spec(m) is None]
    if missing:
        return [
            {
                T.COL_STATUS: "skipped",
                T.COL_NOTE: f"the official modules need {', '.join(missing)} (pip install "
                f"--target DIR einops timm; carry DIR and put it on PYTHONPATH)",
            }
        ]
    from benchmarks.speed.official import side_by_side

    return side_by_side(
        args.official_repo, size, str(device), tuple(args.precisions), args.arch, args.warmup, args.repeat
    )


def section_stages(args, device) -> list[dict[str, Any]]:
    import torch

    from sr.registry import list_methods, load_method, method_spec

    rows: list[dict[str, Any]] = []
    family = [m for m in list_methods() if method_spec(m).factory.endswith(":ResShiftFamily")]
    sr_fps: dict[str, dict[str, float]] = {}
    for name in args.stage_methods or ["bicubic", *family]:
        try:
            method = load_method(name, random_weights=True, device=str(device))
        except Exception as exc:  # noqa: BLE001 - one method that cannot be built is a row, not the end
            rows.append({"stage": "sr", "what": name, T.COL_STATUS: f"error: {type(exc).__name__}: {exc}"[:200]})
            continue
        for shape, (h, w) in STAGE_SHAPES.items():
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
            t = T.time_calls(lambda m=method, x=x: m.upscale(x), device, 1, args.stage_repeat)
            sr_fps.setdefault(name, {})[shape] = 1e3 / t.median_ms
            rows.append(
                {
                    "stage": "sr",
                    "what": name,
                    "shape": shape,
                    T.COL_STATUS: "ok",
                    T.COL_FRAMES_PER_S: 1e3 / t.median_ms,
                    T.COL_PEAK_GIB: t.peak_gib,
                }
            )
        del method
    metric_s = 0.0
    if importlib.util.find_spec("pyiqa") is None:
        rows.append({"stage": "iqa", T.COL_STATUS: "skipped", T.COL_NOTE: "pyiqa not installed"})
    else:
        from downstream.metrics import QualityMetric, list_metrics

        img = torch.rand(1, 3, 768, 1024, generator=torch.Generator().manual_seed(1))
        ref = torch.rand(1, 3, 768, 1024, generator=torch.Generator().manual_seed(2))
        for name in args.metrics or list_metrics():
            try:
                metric = QualityMetric(name, device=str(device), random_weights=True)
                lat = T.time_calls(lambda m=metric: m(img, ref), device, 1, args.stage_repeat).median_ms / 1e3
            except Exception as exc:  # noqa: BLE001 - a metric that cannot run here is a row
                rows.append({"stage": "iqa", "what": name, T.COL_STATUS: f"error: {type(exc).__name__}: {exc}"[:200]})
                continue
            metric_s += lat
            rows.append({"stage": "iqa", "what": name, T.COL_STATUS: "ok", T.COL_FRAMES_PER_S: 1 / lat})
    for task, pkg in (("detection", "ultralytics"), ("segmentation", "mmseg")):
        note = (
            "not timed here: python -m benchmarks.speed.perf --stages --device cuda"
            if importlib.util.find_spec(pkg)
            else f"{pkg} not installed"
        )
        rows.append({"stage": task, T.COL_STATUS: "skipped", T.COL_NOTE: note})
    # projected paper grid: every registered method; a method not timed here counts at the slowest timed SR rate
    slowest = {s: min(v[s] for v in sr_fps.values()) for s in STAGE_SHAPES} if sr_fps else {}
    if slowest:
        n_methods = len(list_methods())
        frames = sum(PAPER_FRAMES.values())
        sr_hours = sum(PAPER_FRAMES[s] / sr_fps.get(m, slowest)[s] for m in list_methods() for s in STAGE_SHAPES) / 3600
        rows.append(
            {
                "stage": "paper grid (projected)",
                "what": f"{n_methods} methods x {frames} frames",
                T.COL_STATUS: "ok",
                "sr_hours": sr_hours,
                "iqa_hours": n_methods * frames * metric_s / 3600,
                T.COL_NOTE: "methods not timed here counted at the slowest timed SR rate; detection and "
                "segmentation not included",
            }
        )
    return rows


SECTIONS = {
    "env": section_env,
    "precision": section_precision,
    "compile": section_compile,
    "official": section_official,
    "stages": section_stages,
}
#: sections called once per ``--sizes`` entry, with the size as third argument
SIZED = {"precision", "compile", "official"}


def build_parser() -> cli.ArgumentParser:
    from benchmarks.speed.precision import CODEBOOKS

    p = cli.ArgumentParser(prog="python -m benchmarks.speed.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_device()
    p.add_argument(
        "--out",
        type=cli.out_dir,
        default=os.environ.get("OUT") or "gpu_check",
        help="folder for gpu_check.md / gpu_check.json (default: $OUT, else ./gpu_check)",
    )
    add_overwrite_option(p)
    p.add_argument(
        "--sections", type=cli.names_from(SECTIONS), default=list(SECTIONS), help=f"subset of {','.join(SECTIONS)}"
    )
    T.add_options(
        p,
        sizes_default="256x192",
        precisions_default='fp32,mixed,fp16,bf16,{"encode":"fp16","decode":"fp16"},{"decode":"bf16"}',
        warmup=2,
        repeat=10,
        out_csv=False,
        arch=True,
    )
    p.add_argument("--frames", default=None, help="folder of LR PNGs for the precision section (default: noise)")
    p.add_argument(
        "--codebooks", type=cli.names_from(CODEBOOKS), default=list(CODEBOOKS), help="codebooks of the precision study"
    )
    p.add_argument("--fit-frames", type=cli.positive_int, default=4, help="held-out frames of the fitted codebook")
    p.add_argument(
        "--compile-precision",
        type=T.precision,
        default="mixed",
        help="precision policy of the compile section (default: mixed)",
    )
    p.add_argument("--official-repo", default=None, help="checkout of zirui0625/DifIISR for the official section")
    p.add_argument("--budget", type=float, default=480, help="seconds; later sections are skipped once spent")
    p.add_argument("--stage-repeat", type=cli.positive_int, default=3, help="timed calls per stage measurement")
    p.add_argument(
        "--stage-methods",
        type=cli.names,
        default=None,
        help="SR methods of the stages section (default: bicubic and every ResShift-family method)",
    )
    p.add_argument(
        "--metrics", type=cli.names, default=None, help="quality metrics of the stages section (default: all)"
    )
    return p


@cli_entry
def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    claim_folder(args.out, "gpu check", ("gpu_check.json", "gpu_check.md"), overwrite=args.overwrite)
    device = torch.device(args.device)
    report = Report(Path(args.out))
    started = time.perf_counter()
    for name in args.sections:
        t0 = time.perf_counter()
        if t0 - started > args.budget:
            report.add(name, [{T.COL_STATUS: "skipped", T.COL_NOTE: f"--budget {args.budget:.0f} s spent"}])
            continue
        rows = []
        for size in args.sizes if name in SIZED else [None]:
            try:
                rows += SECTIONS[name](args, device, size) if size else SECTIONS[name](args, device)
            except Exception as exc:  # noqa: BLE001 - a section that fails is reported, the next one still runs
                traceback.print_exc()
                rows.append({T.COL_SIZE: size or "", T.COL_STATUS: f"error: {type(exc).__name__}: {exc}"[:300]})
        section_ms = round(1e3 * (time.perf_counter() - t0))
        report.add(name, [{**r, "section_ms": section_ms} if i == 0 else r for i, r in enumerate(rows)])
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()
    print(f"wrote {Path(args.out) / 'gpu_check.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
