"""The built package: every package and data file is in the wheel, and the main job runs from an installed wheel
in a fresh environment, outside the checkout (configs and demo weights come from the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from reports.tables import load_results

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
        top, rest = f.split("/", 1)
        package = "irsr_configs" if top == "configs" else top
        if not any(
            Path(rest).match(pattern) and rest.count("/") == pattern.count("/") for pattern in data.get(package, ())
        ):
            missing.append(f)
    assert not missing, missing


@pytest.mark.slow
def test_main_job_runs_from_an_installed_wheel_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # the checkout's files (tracked and new), without build leftovers
    for f in subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split():
        if (REPO / f).is_file():
            (source / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, source / f)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
    )
    wheel = next(wheels.glob("irsr_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "irsr_configs/suites/demo.yaml" in names and "sr/weights/demo/yolo_demo_synthir.pt" in names
    venv = tmp_path / "venv"  # the dependencies (torch, ...) from this interpreter; the project only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
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
