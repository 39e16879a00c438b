"""``irsr``: one command whose subcommands run the entry points' own ``main`` (one parser each, shared with their
``python -m`` form), ``irsr ls`` (what exists, with weights status) and ``irsr validate`` (a YAML checked without
running it)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.irsr import COMMANDS
from benchmarks.irsr import main as irsr
from sr.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]


def _error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_every_command_is_an_entry_point_with_its_own_parser():
    for module_name, _ in COMMANDS.values():
        module = importlib.import_module(module_name)
        assert hasattr(module.main, "__wrapped__"), f"{module_name}.main is not wrapped by sr.cli.cli_entry"


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_help_of_every_command_names_it(words, capsys):
    with pytest.raises(SystemExit) as done:
        irsr([*words, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: irsr {' '.join(words)} ")


def test_irsr_and_python_m_parse_the_same_way(tmp_path, capsys):
    """The same mistake gives the same message both ways; only the program name differs."""
    from benchmarks.run import main as run

    argv = ["--limit", "0", "--out", str(tmp_path)]
    assert run(argv) == 2
    direct = _error_line(capsys.readouterr().err)
    assert irsr(["run", *argv]) == 2
    via_irsr = _error_line(capsys.readouterr().err)
    assert direct.startswith("error: python -m benchmarks.run: ") and via_irsr.startswith("error: irsr run: ")
    assert direct.split(": ", 2)[2] == via_irsr.split(": ", 2)[2]
    with pytest.raises(SystemExit):  # the program name is restored after the command
        run(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m benchmarks.run ")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [([], "required: COMMAND"), (["nope"], "invalid choice: 'nope'"), (["train"], "expected one of detection")],
)
def test_command_mistakes_are_one_line(argv, needle, capsys):
    assert irsr(argv) == 2
    assert needle in _error_line(capsys.readouterr().err)


def test_ls_methods_lists_every_method_with_its_weights_status(tmp_path, capsys):
    from sr.registry import list_methods
    from sr.weights import path_of

    assert irsr(["ls", "methods", "--weights-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    status = {line.split()[0]: line.split()[1] for line in out.splitlines() if line and not line.startswith(" ")}
    assert set(list_methods()) <= set(status)
    assert status["bicubic"] == "none" and status["difiisr_demo"] == "ok"  # committed demo weights
    assert status["difiisr"] == "missing"
    assert f"expected {path_of('difiisr', tmp_path)}" in out and "https://drive.google.com/" in out
    # a file put in the weights directory turns the status to ok
    for name in ("difiisr", "resshift_vq_f4"):
        path_of(name, tmp_path).parent.mkdir(parents=True, exist_ok=True)
        path_of(name, tmp_path).write_bytes(b"x")
    assert irsr(["ls", "methods", "--weights-dir", str(tmp_path)]) == 0
    assert any(line.split()[:2] == ["difiisr", "ok"] for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("kind", ["datasets", "metrics", "tasks", "suites"])
def test_ls_lists_every_entry(kind, capsys):
    from benchmarks.suites import list_suites
    from downstream.datasets import list_datasets
    from downstream.metrics import list_metrics
    from downstream.tasks import TASKS

    expected = {"datasets": list_datasets, "metrics": list_metrics, "tasks": TASKS.names, "suites": list_suites}[kind]
    assert irsr(["ls", kind]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line and not line.startswith(" ")}
    assert set(expected()) <= names


SHIPPED = sorted(
    p
    for folder in ("methods", "datasets", "tasks", "suites", "train", "degradations")
    for p in (CONFIG_DIR / folder).glob("*.yaml")
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_validate_accepts_every_shipped_yaml(path, capsys):
    assert irsr(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {path}: ")


BROKEN = {
    "method option typo": ("methods", "bicubic.yaml", ("{resample: bicubic}", "{resampel: bicubic}"), "resampel"),
    "method option type": ("methods", "esrgan.yaml", ("tile: 256", "tile: big"), "tile = 'big'"),
    "method factory": ("methods", "bicubic.yaml", ("interpolation:PILResize", "interpolation:Nope"), "cannot be"),
    "data-set kind": ("datasets", "tno.yaml", ("kind: folder", "kind: foldr"), "unknown data-set kind 'foldr'"),
    "data-set option": ("datasets", "m3fd_test.yaml", ("split: test", "splitt: test"), "splitt"),
    "task option": ("tasks", "detection_demo.yaml", ("imgsz: 320", "imgsize: 320"), "imgsize"),
    "suite method": ("suites", "paper_supp.yaml", ("methods: all", "methods: [bicubc]"), "bicubc"),
    "suite metric": ("suites", "demo.yaml", ("[psnr,", "[psnrr,"), "psnrr"),
    "train key": ("train", "resshift_demo.yaml", ("out_dir:", "outdir:"), "outdir"),
    "not YAML": ("methods", "bicubic.yaml", ("name: bicubic", "name: [bicubic"), "invalid YAML"),
    "degradation parameter": ("degradations", "noise.yaml", ("3: {sigma: 1.0}", "3: {sigmaa: 1.0}"), "sigmaa"),
    "degradation stage": ("degradations", "noise.yaml", ("stage: counts", "stage: count"), "'count'"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_validate_rejects_a_broken_yaml_with_one_error_line(case, tmp_path, capsys):
    folder, name, (old, new), needle = BROKEN[case]
    text = (CONFIG_DIR / folder / name).read_text()
    assert old in text, (name, old)
    broken = tmp_path / folder / name  # in a folder of the same name: validate tells the kind from it
    broken.parent.mkdir()
    for base in (CONFIG_DIR / folder).glob("_*.yaml"):  # what ``base:`` refers to
        (broken.parent / base.name).write_text(base.read_text())
    broken.write_text(text.replace(old, new, 1))
    assert irsr(["validate", str(broken)]) == 2
    assert needle in _error_line(capsys.readouterr().err)


def test_validate_tells_the_kind_from_the_keys_outside_configs(tmp_path, capsys):
    method = tmp_path / "mine.yaml"
    method.write_text("factory: sr.methods.interpolation:PILResize\nscale: 4\noptions: {resample: nearest}\n")
    assert irsr(["validate", str(method)]) == 0
    assert "method mine" in capsys.readouterr().out
    unknown = tmp_path / "other.yaml"
    unknown.write_text("colour: blue\n")
    assert irsr(["validate", str(unknown)]) == 2
    assert "cannot tell what this YAML configures" in _error_line(capsys.readouterr().err)


def test_console_script_is_declared_and_python_m_works():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"irsr": "benchmarks.irsr:main"}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.irsr", "ls", "suites"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "demo" in out.stdout.split()
