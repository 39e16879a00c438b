"""Start-up allocator tuning (sr.runtime): applied once on glibc, off when asked, and it really stops
the page faults of re-allocating large buffers (counted by the kernel, not timed)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from sr.runtime import allocator_threshold, compile_cache_dir
from sr.vocab import ENV_CACHE_DIR, ENV_MALLOC_TUNING

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocate, fill and free a 64 MiB buffer 8 times (warm-up: the heap grows to its working size), then
# 20 times more; report the minor page faults of those 20.
PROBE = """
import json, resource, sys
from sr.runtime import tune_process, allocator_status
if sys.argv[1] == "tune":
    tune_process()
import torch
torch.set_num_threads(1)
for _ in range(8):
    torch.empty(16 << 20, dtype=torch.float32).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(16 << 20, dtype=torch.float32).fill_(1.0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"faults": after - before, "status": allocator_status()}))
"""


def _probe(mode: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**clean, **env},
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc allocator tuning only")
def test_tuning_stops_refaulting_large_buffers():
    tuned, plain = _probe("tune"), _probe("plain")
    assert tuned["status"].startswith("mallopt thresholds"), tuned
    assert plain["status"] == "not tuned"
    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert plain["faults"] > 10 * pages  # every fill of a fresh mapping faults its pages in again
    # the freed buffer is reused: usually no page faults again; allow one buffer's worth (the kernel may reclaim
    # a reused page under memory pressure), still a tenth of the untuned count
    assert tuned["faults"] <= pages


@pytest.mark.skipif(not GLIBC, reason="glibc allocator tuning only")
def test_tuning_respects_the_switch_and_the_users_glibc_variables():
    assert _probe("tune", **{ENV_MALLOC_TUNING: "0"})["status"] == f"off ({ENV_MALLOC_TUNING}=0)"
    assert _probe("tune", MALLOC_TRIM_THRESHOLD_="131072")["status"] == "off (glibc variables set by the user)"


def test_threshold_is_bounded():
    assert 64 << 20 <= allocator_threshold() <= 1 << 30


def test_compile_cache_under_the_project_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path))
    assert compile_cache_dir() == tmp_path / "inductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache_dir() == tmp_path / "mine"


def test_set_tf32_switches_the_convolution_flag_and_keeps_matmuls_strict():
    import torch

    from sr.runtime import set_tf32

    try:
        set_tf32(False)
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        set_tf32(True)
        assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        set_tf32(True)  # PyTorch's default, as every other test expects


@pytest.mark.gpu
def test_strict_fp32_convolution_on_cuda_matches_the_cpu():
    import torch

    from sr.runtime import set_tf32

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1, 64, 96, 96, generator=g), torch.randn(64, 64, 3, 3, generator=g) / 24
    cpu = torch.nn.functional.conv2d(x, w, padding=1)
    try:
        set_tf32(False)
        strict = torch.nn.functional.conv2d(x.cuda(), w.cuda(), padding=1).cpu()
    finally:
        set_tf32(True)
    assert (strict - cpu).abs().max().item() < 1e-4
