"""Shared fixtures: where ../shared is, and an isolated environment for every test.

Every test that reads ../shared (the conformance kit, real infrared samples) gets its paths through
``shared_path``: a user's clone without ../shared skips those tests cleanly, while CI (which has
../shared and sets IRSR_REQUIRE_SHARED=1) fails them, so an oracle can never skip unnoticed.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from sr.vocab import ENV_DATA_DIR, ENV_REQUIRE_SHARED, ENV_SHARED_DIR, ENV_WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get(ENV_SHARED_DIR, REPO.parent / "shared"))


def shared_required() -> bool:
    """True when a missing ../shared file must fail the test instead of skipping it (CI)."""
    return os.environ.get(ENV_REQUIRE_SHARED, "").strip().lower() not in ("", "0", "false", "no")


def shared_path(*parts: str, what: str = "shared test file") -> Path:
    """``../shared/<parts>``; skips the calling test when it is absent, or fails it under IRSR_REQUIRE_SHARED=1."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{what} not available ({path} is absent)"
        if shared_required():
            pytest.fail(f"{message}; {ENV_REQUIRE_SHARED} is set, so this oracle may not skip", pytrace=False)
        pytest.skip(message)
    return path


def noise_frames(folder: Path, count: int, height: int = 32, width: int = 40) -> Path:
    """``folder`` (created) with ``count`` seeded 8-bit noise frames ``f0.png``, ``f1.png``, ...: a tiny data set."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(folder / f"f{i}.png")
    return folder


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real infrared samples); skipped (or failed under IRSR_REQUIRE_SHARED=1) when absent."""
    return shared_path("data", what="real-data samples")


_CONNECT = socket.socket.connect


def _connect_offline(sock, address):
    """Internet sockets refuse to connect (local AF_UNIX sockets, which libraries use between processes, work)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"network access to {address!r} attempted during the demo run (the test forbids it)")
    return _CONNECT(sock, address)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The README's main command (``benchmarks.run --methods all``, demo suite, report included) run ONCE per test
    session, on a machine without network (sockets refuse to connect). Tests that only read its folder share it;
    a test that changes a file of it must work on a copy."""
    from benchmarks.run import main as run_main

    out = tmp_path_factory.mktemp("demo")
    root = tmp_path_factory.mktemp("demo_home")
    with pytest.MonkeyPatch.context() as mp:  # session scope: the per-test isolation below is not active yet
        mp.setenv(ENV_WEIGHTS_DIR, str(root / "weights"))
        mp.setenv(ENV_DATA_DIR, str(root / "data"))
        mp.setenv("YOLO_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", _connect_offline)
        assert run_main(["--methods", "all", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """No test reads the user's weights or data directories, or writes outside tmp."""
    root = tmp_path_factory.mktemp("irsr_home")
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(root / "weights"))
    monkeypatch.setenv(ENV_DATA_DIR, str(root / "data"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
