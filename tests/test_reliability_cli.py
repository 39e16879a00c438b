"""User mistakes on the command line and in YAML are one-line ``error:`` messages on stderr, no
traceback, non-zero exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--tasks", "quality", "--metrics", "psnr", "--limit", "1", "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    """A copy of configs/ with deliberately broken entries."""
    cfg = tmp_path_factory.mktemp("cfg") / "configs"
    shutil.copytree(REPO / "configs", cfg)
    (cfg / "methods" / "bicubic_typo.yaml").write_text(
        "name: bicubic_typo\nfactory: sr.methods.interpolation:PILResize\nscale: 4\nfamilly: x\n"
        "options: {resample: bicubic}\n"
    )
    (cfg / "methods" / "bicubic_badopt.yaml").write_text(
        "name: bicubic_badopt\nfactory: sr.methods.interpolation:PILResize\nscale: 4\n"
        "options: {resample: bicubic, tile_size: 64}\n"
    )
    (cfg / "methods" / "broken_yaml.yaml").write_text("name: broken_yaml\nfactory: [unclosed\n")
    (cfg / "suites" / "typo.yaml").write_text((cfg / "suites" / "demo.yaml").read_text() + "\nmetircs: [psnr]\n")
    (cfg / "datasets" / "missing_root.yaml").write_text("kind: folder\nroot: /nonexistent/frames\n")
    return cfg


def _run(args, config_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "IRSR_CONFIG_DIR": str(config_dir)}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--out", str(tmp_path / "out"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


IN_PROCESS = {
    "unknown method": (["--methods", "bicubc", *QUICK], ["unknown method 'bicubc'", "Did you mean 'bicubic'"]),
    "unknown suite": (["--suite", "dem"], ["dem", "demo"]),
    "unknown task": (["--tasks", "quality,detektion"], ["detektion"]),
    "unknown metric": (["--methods", "bicubic", "--metrics", "psnrr", "--tasks", "quality"], ["psnrr"]),
    "bad --limit": (["--limit", "abc"], ["--limit"]),
    "unknown option": (["--metods", "bicubic"], ["--metods"]),
}


@pytest.mark.parametrize("case", list(IN_PROCESS))
def test_user_mistake_is_one_line_error(case, tmp_path, capsys):
    from benchmarks.run import main as run_main

    args, needles = IN_PROCESS[case]
    try:
        code = run_main([*args, "--out", str(tmp_path / "out")])
    except SystemExit as exc:  # argparse's own errors: usage line + "error:" line, exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code not in (0, None)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and "error:" in lines[-1] and "Traceback" not in err, err
    if case not in ("bad --limit", "unknown option"):
        assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("case", ["unknown method", "unknown key in suite YAML"])
def test_user_mistake_subprocess_exit_code_and_no_traceback(case, config_dir, tmp_path):
    args = {
        "unknown method": ["--methods", "bicubc", *QUICK],
        "unknown key in suite YAML": ["--suite", "typo", "--methods", "bicubic", *QUICK],
    }[case]
    proc = _run(args, config_dir, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    if case == "unknown key in suite YAML":
        assert "metircs" in lines[0] and "typo.yaml" in lines[0] and "did you mean 'metrics'" in lines[0]


def test_unknown_dataset_has_did_you_mean(tmp_path, capsys):
    """A data set name is resolved per job, so it is an 'unavailable' row, not a crash."""
    import pandas as pd

    from benchmarks.run import main as run_main

    code = run_main(["--methods", "bicubic", "--datasets", "synthir_dmeo", "--out", str(tmp_path / "out"), *QUICK])
    if code == 0:
        df = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False, na_values=[""])
        msg = df[df.metric == "unavailable"].error.iloc[0]
    else:
        msg = capsys.readouterr().err
    assert "synthir_dmeo" in msg and "Did you mean 'synthir_demo'" in msg


def test_bad_method_yaml_is_a_clear_error(config_dir):
    cases = {"bicubic_typo": "familly", "bicubic_badopt": "tile_size", "broken_yaml": "invalid YAML"}
    code = (
        "import sr\nfor m in " + repr(list(cases)) + ":\n    try:\n        sr.load_method(m)\n"
        "    except sr.errors.UserError as e:\n        print('error:', str(e).replace(chr(10), ' '))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "IRSR_CONFIG_DIR": str(config_dir)},
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 3, proc.stdout + proc.stderr
    for line, (method, needle) in zip(lines, cases.items()):
        assert line.startswith("error:") and needle in line and method in line, line


def test_missing_weights_and_wrong_scale_are_clear(tmp_path):
    import sr
    from sr.errors import ConfigError, MissingWeightsError

    pytest.importorskip("spandrel")
    with pytest.raises(MissingWeightsError) as info:
        sr.load_method("esrgan", weights_dir=str(tmp_path))
    msg = str(info.value)
    assert "RRDB_ESRGAN_x4.pth" in msg and str(tmp_path) in msg and "drive.google.com" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="x4 method; scale 2"):
        sr.load_method("bicubic", scale=2)


def test_missing_weights_and_missing_folder_in_a_run_are_rows_and_exit_zero(tmp_path, capsys):
    import pandas as pd

    from benchmarks.run import main as run_main

    pytest.importorskip("spandrel")
    code = run_main(
        [
            "--methods",
            "bicubic,esrgan",
            "--datasets",
            f"synthir_demo,folder:{tmp_path / 'nope'}",
            "--weights-dir",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "out"),
            *QUICK,
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    df = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False, na_values=[""])
    errors = " | ".join(df[df.metric == "unavailable"].error)
    assert "RRDB_ESRGAN_x4.pth" in errors and str(tmp_path / "nope") in errors
    assert "skipped" in err and "esrgan" in err
