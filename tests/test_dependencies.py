"""What pyproject.toml declares matches what the code uses, and the README states the licences users inherit as
the installed packages' own metadata declares them."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from conftest import REPO, project_sources

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def _imported_anywhere(module: str) -> list[str]:
    pattern = re.compile(rf"^\s*(import|from)\s+{module}\b", re.MULTILINE)
    return [str(p.relative_to(REPO)) for p in project_sources() if pattern.search(p.read_text())]


def test_test_only_and_unused_packages_are_not_runtime_dependencies():
    runtime, test = _names(PROJECT["dependencies"]), _names(PROJECT["optional-dependencies"]["test"])
    assert "filelock" not in runtime and _imported_anywhere("filelock") == []  # the lock is fcntl's
    assert "pycocotools" not in runtime and "pycocotools" in test
    assert _imported_anywhere("pycocotools") == []  # only tests/coco_oracle.py imports it


def test_mmseg_gets_the_packages_its_tokenizer_imports():
    spec = next(r for r in PROJECT["dependencies"] if r.startswith("mmsegmentation"))
    assert "[multimodal]" in spec
    extra = [
        r for r in metadata.requires("mmsegmentation") if "extra == 'multimodal'" in r or 'extra == "multimodal"' in r
    ]
    assert _names(extra) == {"ftfy", "regex"}


def test_the_opencv_wheels_agree():
    """Two distributions install cv2/ (see the README); a version mix would leave files of both."""
    versions = {}
    for dist in ("opencv-python", "opencv-python-headless"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    assert versions, "no OpenCV wheel installed"
    assert len(set(versions.values())) == 1, versions
    import cv2

    assert next(iter(versions.values())).startswith(cv2.__version__), (versions, cv2.__version__)


@pytest.mark.parametrize("dist", ["pyiqa", "ultralytics"])
def test_readme_states_the_installed_licence(dist):
    meta = metadata.metadata(dist)
    licence = meta.get("License-Expression") or meta.get("License")
    assert licence, f"{dist} declares no licence"
    readme = (REPO / "README.md").read_text()
    assert f"**{dist} {meta['Version']}: {licence}.**" in readme
