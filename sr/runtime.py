"""Process-wide tuning: ``tune_process()`` once, first thing in every entry point's ``main``.

CPU allocator: glibc serves allocations above its mmap threshold (at most 32 MiB by default) with
fresh ``mmap`` pages and returns them with ``munmap`` on free, so every large tensor of every call
costs page faults and the kernel zeroing the pages again -- on 2 cores most of a benchmark's time
was system time. ``tune_process`` raises the mmap and trim thresholds through ``mallopt`` so freed
buffers are kept and reused (RoadScene x 2 methods x PSNR/SSIM on 2 cores: 52.6 s -> 19.1 s;
docs/performance.md). Memory stays bounded: blocks above the threshold are still mapped
and unmapped, and at most the trim threshold of free memory is kept at the heap's top.
It does nothing on non-glibc platforms, when the user set glibc's own variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``), or when
``IRSR_MALLOC_TUNING=0``.

TF32: ``set_tf32(False)`` gives strict fp32 on CUDA for comparisons with CPU goldens or other
implementations (``benchmarks.speed.perf --official-repo ... --tf32 off``); see its docstring.

Compile cache: ``compile_cache_dir()`` points inductor's on-disk cache at the project's cache
folder (``$IRSR_CACHE_DIR`` or ``~/.cache/irsr``) unless ``TORCHINDUCTOR_CACHE_DIR`` is set, so a
compiled sampler is built once per machine, not once per run (the sampler calls it when compiling).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from pathlib import Path

from sr.vocab import ENV_CACHE_DIR, ENV_MALLOC_TUNING

log = logging.getLogger("sr.runtime")

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
THRESHOLD_CAP = 1 << 30  # 1 GiB: blocks above it stay mmapped (never kept), so the kept memory is bounded

_state: dict[str, str] = {}


def cache_dir() -> Path:
    """The project's cache folder: ``$IRSR_CACHE_DIR`` or ``~/.cache/irsr``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "irsr"


def allocator_threshold() -> int:
    """Bytes for both glibc thresholds: 1 GiB, or an eighth of physical memory on small machines."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return THRESHOLD_CAP
    return int(min(THRESHOLD_CAP, max(64 << 20, ram // 8)))


def tune_process() -> str:
    """Apply the glibc thresholds once per process (cheap, idempotent); returns what was done."""
    if "allocator" in _state:
        return _state["allocator"]
    if os.environ.get(ENV_MALLOC_TUNING, "1").strip().lower() in ("0", "false", "no", "off"):
        status = f"off ({ENV_MALLOC_TUNING}=0)"
    elif any(v in os.environ for v in GLIBC_VARIABLES):
        status = "off (glibc variables set by the user)"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        status = "off (not glibc)"
    else:
        value = allocator_threshold()
        try:
            libc = ctypes.CDLL(None)
            options = (("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD), ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD))
            refused = [name for name, opt in options if libc.mallopt(opt, ctypes.c_int(value)) != 1]
        except (OSError, AttributeError) as exc:
            refused = [f"{type(exc).__name__}: {exc}"]
        status = f"off (mallopt: {', '.join(refused)})" if refused else f"mallopt thresholds {value >> 20} MiB"
    _state["allocator"] = status
    log.debug("allocator tuning: %s", status)
    return status


def allocator_status() -> str:
    """What ``tune_process`` did in this process (``not tuned`` before it ran)."""
    return _state.get("allocator", "not tuned")


def compile_cache_dir() -> Path:
    """Set ``TORCHINDUCTOR_CACHE_DIR`` to ``<cache>/inductor`` unless the user chose one; returns it.

    torch writes its per-boot temporary default into the variable once it looked the folder up, so
    that value counts as not chosen."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen and os.path.abspath(chosen) != os.path.abspath(default_cache_dir()):
        return Path(chosen).expanduser()
    path = cache_dir() / "inductor"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    return path


DEVICE_AUTO = "auto"


def resolve_device(spec: str | None) -> str:
    """The torch device ``spec`` names on this machine, checked: ``auto`` (or None / empty) is ``cuda`` when CUDA
    is present, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` (N below the device count) and ``mps`` (when present)
    as they are. Anything else is a ConfigError saying what to use. The one device rule of every entry point
    (``sr.cli.device``), task and trainer."""
    import torch

    from sr.errors import ConfigError

    spec = (spec or DEVICE_AUTO).strip()
    if spec == DEVICE_AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{spec!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{spec!r}: CUDA is not available on this machine; use cpu or auto")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"{spec!r}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
        return str(dev)
    if dev.type == "mps" and torch.backends.mps.is_available():
        return "mps"
    raise ConfigError(f"{spec!r}: unsupported device type; use auto, cpu, cuda or cuda:N")


def set_tf32(enabled: bool) -> None:
    """Allow TF32 in fp32 CUDA work as PyTorch does by default (cuDNN convolutions yes, matmuls no), or forbid it.

    TF32 rounds the inputs of fp32 convolutions to a 10-bit mantissa on Ampere and later GPUs. On an H200 the
    one-step DifIISR output in fp32 then differs from the official sampler's on the same weights and noise by
    max 0.0154, mean 0.00093 (in [-1, 1]; 1024x768), against ~1e-5 on CPU; TF32 on vs off alone accounts for
    max 0.0153, mean 0.00085. ``enabled=False`` gives strict fp32 (some speed cost); it has no effect on CPU.
    Only the ``allow_tf32`` flags are set: PyTorch refuses a mix of them and its newer ``fp32_precision`` API.
    """
    import torch

    torch.backends.cudnn.allow_tf32 = bool(enabled)
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default; TF32 matmuls are never switched on here
