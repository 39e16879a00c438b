"""What the detection and the segmentation training commands share (``downstream.detection.train``,
``downstream.segmentation.train``): ``--config NAME`` or ``--dataset OUT/dataset.yaml`` on the command line, the run
folder a ``--dataset`` training writes, the data set's classes, the starting weights when their file is there, and
``RUN/task.yaml``, the task config bound to the trained weights and the training split's counts per class (for
``benchmarks.run --tasks RUN/task.yaml``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from downstream.tasks import task_yaml_path
from sr import cli
from sr.errors import UserError
from sr.ownership import check_apart, claim_folder

TASK_FILE = "task.yaml"


def add_source_options(parser: cli.ArgumentParser, config_help: str, trains: str) -> None:
    """``--config`` (a training config) or ``--dataset`` (a data-set YAML), exactly one of them."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help=config_help)
    source.add_argument(
        "--dataset",
        help=f"a data-set YAML (OUT/dataset.yaml of a prepare command): train a {trains} for its classes and write "
        "RUN/task.yaml",
    )


def add_keep_absent_option(parser: cli.ArgumentParser, unit: str, kept_in: str) -> None:
    """``--keep-absent-classes``: a class with no training ``unit`` (box, pixel) stays in ``kept_in``, flagged."""
    parser.add_argument(
        "--keep-absent-classes",
        action="store_true",
        help=f"--dataset: keep classes without a training {unit} in {kept_in} (flagged; default: left out)",
    )


def claim_run_folder(out: str | None, dataset: str, what: str, entries: tuple[str, ...], overwrite: bool) -> Path:
    """The ``--out`` folder of a ``--dataset`` training (required, not the data set's own folder), claimed for
    ``entries`` and task.yaml (``sr.ownership.claim_folder``)."""
    if not out:
        raise UserError("--dataset needs --out RUN (the folder for the weights and task.yaml)")
    run_dir = Path(out)
    check_apart(run_dir, [Path(dataset).parent])  # the run folder is not the data set's
    claim_folder(run_dir, what, (*entries, TASK_FILE), overwrite=overwrite)
    return run_dir


def dataset_classes(dataset: str, label: str, what: str, prepare: str) -> list[str]:
    """The class names of ``label`` (boxes, masks) in the data set's train split; none is an error that names
    the ``prepare`` command."""
    from downstream.datasets import load_dataset

    classes = load_dataset(dataset, split="train").classes(label)
    if not classes:
        raise UserError(f"{dataset}: the data set has no {what} (prepare it with python -m {prepare})")
    return list(classes)


def starting_weights(name: str, weights_dir: str | None, prog: str) -> str | None:
    """``name`` when its file is in the weights directory, else None (training from scratch, said on stderr)."""
    from sr import weights as registry

    path = registry.path_of(name, weights_dir)
    if path.is_file():
        return name
    print(f"[{prog}] no {name} in the weights directory ({path}): training from scratch", file=sys.stderr)
    return None


def write_task_yaml(
    run_dir: Path,
    description: str,
    factory: str,
    options: dict[str, Any],
    train_counts: dict[str, int],
    keep_absent_classes: bool,
) -> Path:
    """``RUN/task.yaml``: the task ``factory`` with ``options`` (its ``weights`` relative to ``run_dir`` when inside
    it, so the folder can move), then the training split's counts per class (``train_counts``: the task flags a class
    with none) and ``keep_absent_classes``."""
    import yaml

    options = {
        **options,
        "weights": task_yaml_path(run_dir, Path(options["weights"])),
        "train_counts": {name: int(n) for name, n in train_counts.items()},
        "keep_absent_classes": bool(keep_absent_classes),
    }
    spec = {"description": description, "factory": factory, "options": options}
    path = run_dir / TASK_FILE
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path
