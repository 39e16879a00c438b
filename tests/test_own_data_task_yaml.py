"""Task files: the task YAML can set what the command line sets (``random_weights``
included), and ``task.yaml`` names its weights relative to itself, so a run folder can be moved."""

from __future__ import annotations

import shutil

import yaml
from conftest import REPO

from downstream.tasks import load_task, task_yaml_path
from sr.vocab import FLAG_RANDOM_WEIGHTS
from sr.weights import sha256_of

DEMO = REPO / "sr" / "weights" / "demo"
COMMON = {"device": "cpu", "weights_dir": None, "random_weights": False}  # what the runner passes by default


def _task_yaml(path, **options):
    spec = {"factory": "downstream.segmentation.task:SegmentationTask", "options": {"variant": "mit_tiny", **options}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_random_weights_in_the_task_yaml_is_honoured(tmp_path):
    """The old loader dropped every YAML option the runner also passes: the task was built without weights and
    failed with 'weights ... is required unless random_weights is set'."""
    task = load_task(_task_yaml(tmp_path / "t.yaml", random_weights=True, classes=["background", "target"]), **COMMON)
    assert FLAG_RANDOM_WEIGHTS in task.flags


def test_a_run_folder_with_relative_weights_can_be_moved(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(DEMO / "segformer_demo_synthir.pth", run / "segmenter.pth")
    assert task_yaml_path(run, run / "segmenter.pth") == "segmenter.pth"
    assert task_yaml_path(run, DEMO / "segformer_demo_synthir.pth") == str(DEMO / "segformer_demo_synthir.pth")
    _task_yaml(run / "task.yaml", weights="segmenter.pth")
    moved = shutil.move(str(run), str(tmp_path / "elsewhere" / "run"))
    task = load_task(f"{moved}/task.yaml", **COMMON)
    assert task.flags == () and task.identity()["weights_sha256"] == sha256_of(DEMO / "segformer_demo_synthir.pth")
