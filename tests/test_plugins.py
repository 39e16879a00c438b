"""One registration mechanism (sr.plugins.register) for every plug-in kind, open to packages outside the project
through the entry-point group ``irsr.plugins``: tests/outside_plugin is such a package (one plug-in of each kind),
seen by the project only through its entry point. Each check runs in a fresh interpreter where the package is on
the path as an installed distribution (a dist-info with its entry_points.txt), nothing else pointing at it; the
slow test does the same from wheels installed in a fresh virtual environment (the project's and the plug-in's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO

PLUGIN = REPO / "tests" / "outside_plugin"
TRAIN_DIR = REPO / "configs" / "train"

#: what a user of each kind does, in a fresh interpreter; prints {kind: evidence} as JSON
CHECKS = """
import json, sys, tempfile
from pathlib import Path

import torch

out = {}
import sr
from sr.registry import method_spec

x = torch.rand(1, 1, 4, 4)
y = sr.load_method("twice_nearest").upscale(x)
out["method"] = {
    "listed": "twice_nearest" in sr.list_methods(),
    "nearest": bool(torch.equal(y, x.repeat_interleave(4, 2).repeat_interleave(4, 3))),
    "paper_name": method_spec("twice_nearest").paper_name,
}
from downstream.datasets import load_dataset

ds = load_dataset("ramps:3")
sample = ds.load("ramp2")
out["dataset-kind"] = {"ids": ds.ids(), "hr": list(sample.hr.shape), "lr": list(sample.lr.shape)}
from downstream.metrics import QualityMetric, list_metrics

image = torch.rand(2, 1, 8, 8)
out["metric"] = {
    "listed": "mean_level" in list_metrics(),
    "equal": bool(torch.allclose(QualityMetric("mean_level")(image), image.mean(dim=(1, 2, 3)))),
}
from downstream.tasks import load_task

out["task"] = {"threshold": load_task("bright_fraction").threshold}
from sr.guidance.terms import TERMS, build_term

term = build_term("mean_shift")
out["guidance-term"] = {"values": term(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)).tolist(),
                        "group": TERMS.get("mean_shift").metadata["group"]}
from sr.train.objectives.base import OBJECTIVES

out["objective"] = {"kind": OBJECTIVES.get("plain_l1").factory.kind}
print(json.dumps(out))
"""


def _as_installed(site: Path) -> Path:
    """``site`` holding the plug-in package and a dist-info declaring its entry point (what pip would write)."""
    shutil.copytree(PLUGIN / "irsr_demo_plugin", site / "irsr_demo_plugin")
    info = site / "irsr_demo_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: irsr-demo-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[irsr.plugins]\ndemo = irsr_demo_plugin\n")
    return site


def _python(python, args: list[str], cwd: Path, pythonpath: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _check_all(python, cwd: Path, pythonpath: str | None) -> dict:
    done = _python(python, ["-c", CHECKS], cwd, pythonpath)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


#: what CHECKS finds for each kind when the outside package is installed
EXPECTED = {
    "method": {"listed": True, "nearest": True, "paper_name": "Twice-Nearest"},
    "dataset-kind": {"ids": ["ramp0", "ramp1", "ramp2"], "hr": [1, 32, 32], "lr": [1, 8, 8]},  # C, H, W tensors
    "metric": {"listed": True, "equal": True},
    "task": {"threshold": 0.1},  # the option registered with the task, not the class default
    "guidance-term": {"values": [1.0, 1.0], "group": "visual"},
    "objective": {"kind": "plain_l1"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return _as_installed(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def found(site, tmp_path_factory) -> dict:
    return _check_all(sys.executable, tmp_path_factory.mktemp("work"), f"{site}{os.pathsep}{REPO}")


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_kind_is_found_through_the_entry_point(kind, found):
    assert found[kind] == EXPECTED[kind]


def test_without_the_distribution_nothing_is_registered(tmp_path):
    """The plug-ins come from the entry point, not from anything in the project."""
    done = _python(
        sys.executable, ["-c", "import sr; print('twice_nearest' in sr.list_methods())"], tmp_path, str(REPO)
    )
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]


@pytest.mark.slow  # about 30 s: three fresh interpreters
def test_the_plugins_run_through_irsr(site, tmp_path):
    """The method, data-set kind, metric and task of the outside package in one `irsr run`; `ls` and `validate` see
    them."""
    path = f"{site}{os.pathsep}{REPO}"
    suite = tmp_path / "plugged.yaml"
    suite.write_text(
        "datasets: ['ramps:2']\nmethods: [twice_nearest, nearest]\nmetrics: [mean_level]\n"
        "tasks: {bright_fraction: bright_fraction}\n"
    )
    irsr = ["-m", "benchmarks.irsr"]
    assert "ok: " in _python(sys.executable, [*irsr, "validate", str(suite)], tmp_path, path).stdout
    listing = _python(sys.executable, [*irsr, "ls", "methods"], tmp_path, path).stdout
    assert any(line.split()[:2] == ["twice_nearest", "none"] for line in listing.splitlines()), listing
    run = [*irsr, "run", "--suite", str(suite), "--out", "run", "--device", "cpu", "--quiet", "--no-report"]
    done = _python(sys.executable, run, tmp_path, path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)
    assert (rows["error"] == "").all(), rows[rows["error"] != ""].to_dict("records")
    got = rows[rows["class"] == "all"].set_index(["method", "metric"])["value"]
    # nearest x4 of nearest-sampled LR: both methods give the same pixels, the metric and task agree across them
    assert got[("twice_nearest", "mean_level")] == pytest.approx(got[("nearest", "mean_level")])
    assert 0 < got[("twice_nearest", "bright")] < 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["objective", "guidance-term"])
def test_the_training_plugins_train_a_tiny_model(kind, site, tmp_path):
    """`irsr train sr` with the outside objective, or with the outside guidance term in DifIISR's guidance."""
    config = tmp_path / "plugged.yaml"
    if kind == "objective":
        config.write_text(f"base: {TRAIN_DIR / 'resshift_demo.yaml'}\nname: plugged\nobjective: {{kind: plain_l1}}\n")
    else:
        terms = "[{kind: mean_shift, mode: inject, weight: 1.0}]"
        config.write_text(
            f"base: {TRAIN_DIR / 'difiisr_demo.yaml'}\nname: plugged\nobjective: {{guidance: {{terms: {terms}}}}}\n"
        )
    tiny = ["train.iterations=2", "data.max_images=2", "data.val_images=1", "data.batch_size=1", "train.threads=1"]
    tiny += ["train.progress=false", "train.tensorboard=false"]
    train = ["-m", "benchmarks.irsr", "train", "sr", "--config", str(config), "--out", "trained", "--device", "cpu"]
    done = _python(
        sys.executable, [*train, *[a for s in tiny for a in ("--set", s)]], tmp_path, f"{site}{os.pathsep}{REPO}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"step": 2' in done.stdout


@pytest.mark.slow
def test_the_plugins_are_found_from_installed_wheels(tmp_path):
    """The project and the plug-in package as wheels installed in a fresh environment, run from another folder."""
    from conftest import install_project_wheel

    python = install_project_wheel(tmp_path)
    wheels = tmp_path / "plugin_wheel"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    source = tmp_path / "plugin_source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(PLUGIN, source)
    subprocess.run([*build, str(source)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*install, str(next(wheels.glob("irsr_demo_plugin-*.whl")))], check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert _check_all(python, work, None) == EXPECTED
    listing = subprocess.run([str(python.parent / "irsr"), "ls", "methods"], cwd=work, capture_output=True, text=True)
    assert listing.returncode == 0 and "twice_nearest" in listing.stdout.split()


def test_register_holds_entries_until_the_kind_has_its_registry(monkeypatch):
    """A plug-in module may be imported before the project module that owns its kind; unknown kinds are refused."""
    from sr import plugins
    from sr.errors import UnknownNameError
    from sr.registry import Registry

    monkeypatch.setattr(plugins, "_registries", {})
    monkeypatch.setattr(plugins, "_pending", {})

    @plugins.register("degradation", "smear", severity_levels=3)
    def smear(x):
        return x

    late = Registry("degradation", plugin_kind="degradation")
    assert late.get("smear").factory is smear and late.get("smear").metadata == {"severity_levels": 3}
    plugins.register("degradation", "blur", len)  # after: straight into the registry
    assert late.names() == ["blur", "smear"]
    with pytest.raises(UnknownNameError, match="plug-in kind 'degredation'"):
        plugins.register("degredation", "x", len)


def test_a_registered_degradation_runs_in_the_degradation_pipeline():
    """register("degradation", ...) reaches downstream.degradations' registry: with a severity it is resolved and
    run after the paper's bicubic (a constant 100 DN frame stays 100 DN under bicubic; +2 DN per severity)."""
    import torch

    from downstream.degradations import DEGRADATIONS, degrade, list_degradations, resolve
    from sr import plugins

    def offset(x, rng, *, scale, bits, dn):
        return x + dn / 255

    plugins.register(
        "degradation", "offset", offset, stage="counts", severities={s: {"dn": 2.0 * s} for s in range(1, 6)}
    )
    try:
        assert "offset" in list_degradations()
        assert [s.name for s in resolve("offset@3").steps] == ["bicubic", "offset"]
        lr = degrade(torch.full((1, 16, 16), 100 / 255), "offset@3", scale=4)
        assert lr.shape == (1, 4, 4) and torch.equal(lr, torch.full((1, 4, 4), 106 / 255, dtype=torch.float32))
    finally:
        DEGRADATIONS._entries.pop("offset", None)


def test_a_registered_task_with_a_weights_file_option_loads():
    """A task plug-in has no YAML to find a relative weights file beside: its weights option is passed as it is."""
    from downstream.tasks import TASKS, Task, load_task
    from sr import plugins

    class Weighted(Task):
        name = "weighted"

        def __init__(self, *, weights: str = "", device: str = "cpu", weights_dir=None, random_weights=False):
            self.weights = weights

        def evaluate(self, items, class_names, workdir):
            return []

    plugins.register("task", "weighted_plugin", Weighted, options={"weights": "detector.pt"})
    try:
        assert load_task("weighted_plugin", device="cpu").weights == "detector.pt"
    finally:
        TASKS._entries.pop("weighted_plugin", None)


def test_a_broken_entry_point_is_one_error_naming_it(tmp_path):
    site = tmp_path / "site"
    (site / "broken_plugin").mkdir(parents=True)
    (site / "broken_plugin" / "__init__.py").write_text("raise RuntimeError('half-installed')\n")
    info = site / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[irsr.plugins]\nbroken = broken_plugin\n")
    done = _python(sys.executable, ["-m", "benchmarks.irsr", "ls", "methods"], tmp_path, f"{site}{os.pathsep}{REPO}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: plug-in entry point 'broken' = 'broken_plugin' of broken-plugin failed to load: half-installed"
    )
