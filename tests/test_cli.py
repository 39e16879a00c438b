"""The command-line convention (sr.cli): every mistake is one ``error:`` line on stderr, exit 2, no traceback;
``--debug`` adds the traceback; ``--device auto`` resolves to CUDA when present, else CPU."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import project_sources

from sr import cli

REPO = Path(__file__).resolve().parents[1]


def _call(main, argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), err
    assert "Traceback" not in err, err
    return err


def test_device_auto_and_validation():
    assert cli.device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert cli.device("cpu") == "cpu"
    for bad in ("foo", "cuda:99", "meta"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(argparse.ArgumentTypeError, match="CUDA is not available"):
            cli.device("cuda")


def test_option_types():
    assert cli.names(" a, b ") == ["a", "b"]
    for bad in (",", "", "a,,b", " , "):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.names(bad)
    assert cli.positive_int("3") == 3
    for bad in ("0", "-1", "abc", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.positive_int(bad)


def test_out_dir_on_a_file_and_an_unwritable_place(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(argparse.ArgumentTypeError, match="not a directory"):
        cli.out_dir(str(afile))
    with pytest.raises(argparse.ArgumentTypeError, match="cannot write"):
        cli.out_dir(str(afile / "sub"))
    # a read-only file system (also refuses root, unlike a chmod'ed folder)
    with pytest.raises(argparse.ArgumentTypeError, match="cannot write"):
        cli.out_dir("/proc/irsr_out")
    assert cli.out_dir(str(tmp_path / "new" / "dir")).is_dir()


RUN_CASES = {
    "--device foo": ["--device", "foo"],
    "--device cuda:3": ["--device", "cuda:3"],
    "--limit -1": ["--limit", "-1"],
    "--limit 0": ["--limit", "0"],
    "--methods ,": ["--methods", ","],
    "--datasets ,": ["--datasets", ","],
    "--out a file": ["--out", "{afile}"],
    "--out read-only": ["--out", "/proc/irsr_out"],
    "abbreviated --method": ["--method", "bicubic", "--tasks", "quality", "--metrics", "psnr"],
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run_mistakes_are_one_line(case, tmp_path, capsys):
    from benchmarks.run import main

    if case == "--device cuda:3" and torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = [a.format(afile=afile) for a in RUN_CASES[case]]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    code, err = _call(
        main,
        [*argv, "--methods", "bicubic", "--tasks", "quality", "--metrics", "psnr"] if "--methods" not in argv else argv,
        capsys,
    )
    assert code == 2
    _one_error_line(err)
    if case.startswith("abbreviated"):
        assert "unrecognized arguments: --method" in err


TRAIN_CASES = {
    "iterations=abc": (["--set", "train.iterations=abc"], "train.iterations"),
    "batch_size=0": (["--set", "data.batch_size=0"], "data.batch_size"),
    "nosuch.key": (["--set", "nosuch.key=1"], "nosuch"),
    "iterations=-5": (["--set", "train.iterations=-5"], ">= 1"),
    "first_stage=vq without vq": (["--set", "model.first_stage=vq"], "model.vq"),
    "--set without =": (["--set", "train.iterations"], "KEY=VALUE"),
    "--out on a file": (["--out", "{afile}"], "not a directory"),
    "--device foo": (["--device", "foo"], "foo"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_mistakes_are_one_line(case, tmp_path, capsys):
    from sr.train.__main__ import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    args, needle = TRAIN_CASES[case]
    argv = ["--config", "resshift_demo", *[a.format(afile=afile) for a in args]]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "run")]
    code, err = _call(main, argv, capsys)
    assert code == 2
    assert needle in _one_error_line(err)


def test_regress_and_reports_on_a_non_csv(tmp_path, capsys):
    from benchmarks.regress import main as regress
    from reports.__main__ import main as reports

    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    binary = tmp_path / "x.png"
    binary.write_bytes(bytes(range(256)) * 4)
    for main, argv in (
        (regress, ["--baseline", str(junk), "--results", str(junk)]),
        (regress, ["--baseline", str(binary), "--results", str(binary)]),
        (reports, ["--results", str(junk), "--out", str(tmp_path / "rep")]),
        (reports, ["--results", str(tmp_path / "none.csv"), "--out", str(tmp_path / "rep")]),
    ):
        code, err = _call(main, argv, capsys)
        assert code == 2
        _one_error_line(err)


def test_debug_shows_the_traceback_and_subprocess_exit_code(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "benchmarks.run", "--out", str(tmp_path), "--suite", "dem"]
    plain = subprocess.run(base, cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.startswith("error: unknown suite 'dem'") and "Traceback" not in plain.stderr
    debug = subprocess.run([*base, "--debug"], cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert debug.returncode == 2 and "Traceback" in debug.stderr and "error: unknown suite" in debug.stderr


def test_every_entry_point_uses_the_convention():
    """Each module with a command line builds its parser with sr.cli and wraps main with cli_entry."""
    import ast

    offenders = []
    for path in project_sources():
        if path == REPO / "sr" / "cli.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "ArgumentParser"
                and isinstance(node.value, ast.Name)
                and node.value.id == "argparse"
            ):
                offenders.append(f"{path.relative_to(REPO)}: argparse.ArgumentParser")
            if isinstance(node, ast.FunctionDef) and node.name == "main" and node.col_offset == 0:
                names = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in node.decorator_list}
                if "cli_entry" not in names:
                    offenders.append(f"{path.relative_to(REPO)}: main without @cli_entry")
    assert offenders == []


def _tiny_train(tmp_path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    from sr.train.__main__ import main

    argv = [
        "--config",
        "resshift_demo",
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        "--set",
        "train.iterations=2",
        "--set",
        "data.max_images=2",
        "--set",
        "data.val_images=1",
        "--set",
        "data.batch_size=1",
        "--set",
        "train.progress=false",
        "--set",
        "train.tensorboard=false",
        "--set",
        "train.threads=1",
        *extra,
    ]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_resume_of_a_finished_run_adds_no_row_and_bad_checkpoints_are_clear(tmp_path, capsys):
    assert _tiny_train(tmp_path, capsys)[0] == 0
    log = tmp_path / "run" / "log.csv"
    before = log.read_text()
    code, out, _ = _tiny_train(tmp_path, capsys, "--resume")
    assert code == 0 and '"step": 2' in out
    assert log.read_text() == before  # no second validation row
    last = tmp_path / "run" / "ckpt" / "last.pt"
    torch.save({"ema": {}, "step": 1}, last)
    code, _, err = _tiny_train(tmp_path, capsys, "--resume")
    assert code == 2 and "lacks model" in _one_error_line(err)
    last.write_bytes(b"")
    code, _, err = _tiny_train(tmp_path, capsys, "--resume")
    assert code == 2 and "empty (0 bytes" in _one_error_line(err)


NAME_CASES = {
    "--suite ../../../../tmp/x": (["--suite", "../../../../tmp/x"], "unknown suite"),
    "--datasets ../../../x": (["--datasets", "../../../x"], "unknown data set"),
    "--datasets /etc/passwd": (["--datasets", "/etc/passwd"], "unknown data set"),
    "--datasets m3fd_tset": (["--datasets", "m3fd_tset"], "Did you mean 'm3fd_test'"),
    "--datasets nosuch.yaml": (["--datasets", "nosuch/x.yaml"], "not found"),
    "--datasets bogus:/x": (["--datasets", "bogus:/x"], "unknown data-set kind"),
    "--tasks detektion": (["--tasks", "quality,detektion"], "Did you mean 'detection'"),
    "--metrics psnrr": (["--metrics", "psnrr"], "Did you mean 'psnr'"),
    "--methods bicubc": (["--methods", "bicubc"], "Did you mean 'bicubic'"),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_names_resolve_in_the_config_folders_only(case, tmp_path, capsys):
    from benchmarks.run import main

    (tmp_path / "x.yaml").write_text("datasets: [synthir_demo]\n")
    args, needle = NAME_CASES[case]
    code, err = _call(main, [*args, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert needle in _one_error_line(err)
    assert not (tmp_path / "out").exists()  # nothing was started


def test_a_dataset_yaml_path_and_a_name_with_suffix_are_accepted(tmp_path):
    from benchmarks.run import build_parser, resolve_plan

    path = REPO / "configs" / "datasets" / "synthir_demo.yaml"
    for spec in (str(path), "synthir_demo.yaml", "synthir_demo"):
        args = build_parser().parse_args(["--datasets", spec, "--out", str(tmp_path), "--methods", "bicubic"])
        datasets, methods, _ = resolve_plan(args)
        assert datasets == ["synthir_demo"] and methods == ["bicubic"]


def test_unknown_task_option_is_a_usage_error(tmp_path, capsys):
    from benchmarks.run import main

    task = tmp_path / "task.yaml"
    task.write_text((REPO / "configs" / "tasks" / "detection_demo.yaml").read_text() + "\n")
    import yaml

    spec = yaml.safe_load(task.read_text())
    spec.setdefault("options", {})["bogus"] = 1
    task.write_text(yaml.safe_dump(spec))
    code, err = _call(main, ["--tasks", str(task), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "'bogus'" in _one_error_line(err)
