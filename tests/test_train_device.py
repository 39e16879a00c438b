"""``--device`` of the detection and segmentation trainers: the project's spelling with default ``auto`` (as every
entry point), translated into ultralytics' spelling inside downstream.detection; a bad device is a usage error."""

from __future__ import annotations

import ast
import re

import pytest
import torch
from conftest import REPO, project_sources

from downstream.detection.offline import ultralytics_offline
from downstream.detection.train import main as detection_main
from downstream.detection.yolo import ultralytics_device, ultralytics_spelling
from downstream.segmentation.train import main as segmentation_main
from sr.errors import ConfigError
from sr.runtime import resolve_device
from sr.vocab import OPT_DEVICE

TRAINERS = {
    "detection": (detection_main, "yolo_demo_synthir"),
    "segmentation": (segmentation_main, "segformer_demo_synthir"),
}


@pytest.mark.parametrize(
    ("ours", "theirs"), [("cpu", "cpu"), ("cuda", "0"), ("cuda:0", "0"), ("cuda:3", "3"), ("mps", "mps")]
)
def test_translation_to_ultralytics_spelling(ours, theirs):
    ultralytics_offline()  # before ultralytics is first imported
    from ultralytics.utils.torch_utils import parse_device

    assert ultralytics_spelling(ours) == theirs
    if ours != "mps":  # ultralytics' own parser agrees with the hand-written answer
        assert parse_device(ours) == theirs


def test_auto_and_bad_devices_in_the_translation():
    assert ultralytics_device("auto") == ultralytics_device(None) == ("0" if torch.cuda.is_available() else "cpu")
    for bad in ("0,1", "gpu", "meta"):
        with pytest.raises(ConfigError, match="device"):
            ultralytics_device(bad)
    if not torch.cuda.is_available():  # checked on this machine before it is translated
        with pytest.raises(ConfigError, match="CUDA is not available"):
            ultralytics_device("cuda")


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_trainers_default_to_auto(trainer, capsys):
    main, _ = TRAINERS[trainer]
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"{OPT_DEVICE} DEVICE" in help_text and "cuda:N (default: auto)" in help_text


@pytest.mark.parametrize("bad", ["foo", "0", "0,1"])
@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_a_bad_device_is_a_usage_error(trainer, bad, capsys, tmp_path):
    main, config = TRAINERS[trainer]
    assert main(["--config", config, "--out", str(tmp_path / "o"), OPT_DEVICE, bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and repr(bad) in err
    assert not (tmp_path / "o").exists()


def test_no_entry_point_spells_its_own_device_option():
    """``--device`` exists only through ``sr.cli.ArgumentParser.add_device`` (one spelling, one default)."""
    offenders = []
    for path in project_sources():
        if path == REPO / "sr" / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                spelled = {a.value for a in node.args if isinstance(a, ast.Constant)}
                spelled |= {a.id for a in node.args if isinstance(a, ast.Name)}
                if spelled & {"--device", "OPT_DEVICE"}:
                    offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_the_inn_pretraining_command_takes_the_device_option_too(capsys):
    from sr.train.inn_pretrain import main

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "cuda:N (default: auto)" in " ".join(capsys.readouterr().out.split())


def test_one_device_rule():
    """``auto`` becomes CUDA-when-present in sr.runtime.resolve_device only; every entry point, task and trainer
    goes through it."""
    rule = re.compile(r"""["']cuda["'] if torch\.cuda\.is_available\(\) else ["']cpu["']""")
    holders = [str(path.relative_to(REPO)) for path in project_sources() if rule.search(path.read_text())]
    assert holders == ["sr/runtime.py"]
    with pytest.raises(ConfigError, match="cuda:N"):
        resolve_device("foo")
    assert resolve_device(None) == resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
