"""The built package: every package and data file is in the wheel, and the main job runs from an installed wheel
in a fresh environment, outside the checkout (configs and demo weights come from the package)."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import install_project_wheel

from reports.tables import load_results
from sr.registry import list_methods

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sr", "downstream", "benchmarks", "reports")


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *paths], cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        pytest.skip("not a git checkout")
    return out.stdout.split()


def test_every_package_and_data_file_is_declared():
    cfg = _setuptools()
    on_disk = {
        str(p.parent.relative_to(REPO)).replace("/", ".") for top in PACKAGES for p in (REPO / top).rglob("__init__.py")
    }
    assert set(cfg["packages"]) == on_disk | {"irsr_configs"}
    assert cfg["package-dir"] == {"irsr_configs": "configs"}
    # every tracked non-Python file of a package (and every config) matches a package-data pattern
    data = cfg["package-data"]
    missing = []
    for f in _tracked(*PACKAGES, "configs"):
        if f.endswith(".py") or "/__pycache__/" in f:
            continue
        if f.startswith("configs/"):
            package, rest = "irsr_configs", f.split("/", 1)[1]
        else:  # the innermost declared package holding the file (sr.weights for sr/weights/demo/...)
            package = max((p for p in cfg["packages"] if f.startswith(p.replace(".", "/") + "/")), key=len)
            rest = f[len(package) + 1 :]
        if not any(
            Path(rest).match(pattern) and rest.count("/") == pattern.count("/") for pattern in data.get(package, ())
        ):
            missing.append(f)
    assert not missing, missing


@pytest.mark.slow
def test_main_job_runs_from_an_installed_wheel_outside_the_checkout(tmp_path):
    python = install_project_wheel(tmp_path)
    venv = python.parents[1]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IRSR_CONFIG_DIR")}
    env["IRSR_WEIGHTS_DIR"] = str(tmp_path / "no_weights")
    where = subprocess.run(
        [python, "-c", "import sr, sr.config as c; print(sr.__file__); print(c.CONFIG_DIR)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    # the console script: every method with its weights status (no weights directory: only the shipped demo ones)
    listing = subprocess.run(
        [python.parent / "irsr", "ls", "methods"], cwd=work, env=env, capture_output=True, text=True, check=True
    ).stdout
    status = {line.split()[0]: line.split()[1] for line in listing.splitlines() if line[:1].isalnum()}
    assert set(status) == set(list_methods()), listing
    assert status["difiisr_demo"] == "ok" and status["difiisr"] == "missing" and status["bicubic"] == "none"
    run = subprocess.run(
        [python, "-m", "benchmarks.run", "--methods", "all", "--limit", "2", "--out", "run", "--quiet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    df = load_results(work / "run" / "results.csv")
    ok = df[df.error == ""]
    # the demo models shipped in the wheel ran: a trained SR method, the detector and the segmenter
    assert {"detection", "segmentation", "quality"} <= set(ok[ok.method == "difiisr_demo"].task)
    assert (work / "run" / "report" / "report.md").is_file()
