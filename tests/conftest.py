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

from sr.vocab import ENV_DATA_DIR, ENV_REQUIRE_SHARED, ENV_SHARED_DIR, ENV_WEIGHTS_DIR, ENV_WORKERS

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


def project_sources(root: Path = REPO) -> list[Path]:
    """The project's own Python modules: the files of the packages pyproject.toml lists (tests/test_packaging.py
    checks that list against every folder with an ``__init__.py``), never everything under ``root``, which may hold
    a virtual environment (``python -m venv .venv`` in the checkout), build leftovers or a user's files."""
    import tomllib

    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    return sorted(p for package in packages for p in (root / package.replace(".", "/")).glob("*.py"))


def install_project_wheel(tmp_path: Path) -> Path:
    """Build the project's wheel from the checkout's files (tracked and new, no build leftovers) and install it in a
    fresh virtual environment under ``tmp_path`` (the dependencies from this interpreter's site-packages, the project
    only from the wheel); returns that environment's python."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"
    listed = ["git", "ls-files", "-co", "--exclude-standard"]
    for f in subprocess.run(listed, cwd=REPO, capture_output=True, text=True, check=True).stdout.split():
        if (REPO / f).is_file():
            (source / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, source / f)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    subprocess.run([*build, str(source)], check=True)
    wheel = next(wheels.glob("irsr_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "irsr_configs/suites/demo.yaml" in names and "sr/weights/demo/yolo_demo_synthir.pt" in names
    assert any(n.endswith("entry_points.txt") for n in names)  # the irsr console script
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    return python


def noise_frames(folder: Path, count: int, height: int = 32, width: int = 40) -> Path:
    """``folder`` (created) with ``count`` seeded 8-bit noise frames ``f0.png``, ``f1.png``, ...: a tiny data set."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(folder / f"f{i}.png")
    return folder


def mask_source(src: Path, growing: bool = False) -> Path:
    """``src/images`` with four seeded 32x32 noise frames and ``src/masks`` with a white square on each (rows 10-13,
    or 10 to 11+i when ``growing``: a labelled area that differs per frame): a tiny segmentation source."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(src / "images" / f"{i}.png")
        mask = np.zeros((32, 32), np.uint8)
        mask[10 : (12 + i if growing else 14), 10:14] = 255
        Image.fromarray(mask).save(src / "masks" / f"{i}.png")
    return src


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
    # the main job in this process, as most tests count and patch what its jobs do (tests/test_pool.py: workers)
    monkeypatch.setenv(ENV_WORKERS, "1")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
