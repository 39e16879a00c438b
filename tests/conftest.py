"""Shared fixtures: where ../shared is, and an isolated environment for every test."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IRSR_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real infrared samples); the test is skipped when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"real-data samples not available ({path} is absent)")
    return path


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """No test reads the user's weights or data directories, or writes outside tmp."""
    root = tmp_path_factory.mktemp("irsr_home")
    monkeypatch.setenv("IRSR_WEIGHTS_DIR", str(root / "weights"))
    monkeypatch.setenv("IRSR_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
