"""Train a YOLO detector on a harness data set: ``python -m downstream.detection.train --config NAME``.

Or, for a data set of your own (``python -m downstream.detection.prepare ...``)::

    python -m downstream.detection.train --dataset OUT/dataset.yaml --out RUN [--model yolov5n|yolov5s]
        [--epochs N] [--imgsz N] [--batch N] [--limit N] [--device D]

trains on the data set's ``train`` split (HR frames; its ``val`` split picks the best epoch, the train split
when val is empty) with the data set's own classes, and writes ``RUN/detector.pt`` and ``RUN/task.yaml``: a task
config bound to those weights and classes, for ``python -m benchmarks.run --tasks RUN/task.yaml``. The start is
ultralytics' COCO model of the same size (``yolov5nu_coco`` / ``yolov5su_coco``) when its file is in the weights
directory, random weights otherwise; a scratch start is recorded in task.yaml (``scratch_init: true``) and every
result row made with the detector carries the ``scratch_init`` flag. task.yaml also records the training split's
boxes per class (``train_counts``): a class with none there is flagged ``class_absent_in_training`` in the results
and left out of the ``all`` rows, unless ``--keep-absent-classes`` keeps it there (flagged).

``NAME`` is ``configs/detection/<NAME>.yaml`` (or a path to a YAML). Keys:

``model``    ultralytics model yaml (``yolov5s.yaml``: YOLOv5-s with the anchor-free v5u head; ``yolov5n.yaml``)
``init``     weights to fine-tune from (registry name or path, e.g. ``yolov5su_coco``; our format or an ultralytics
             checkpoint read with the class allowlist), or ``null`` to train from scratch. ``--scratch`` overrides.
``classes``  class names in id order (M3FD: People, Car, Bus, Motorcycle, Lamp, Truck)
``data``     ``train`` and ``val`` sources, each ``{dataset: <data-set YAML name>, <option>: <value>...}`` (the HR
             frames and boxes of a harness data set, e.g. ``m3fd_train``) or ``{synthir: {first_seed, count,
             height, width}}`` (rendered directly by downstream.datasets.synthir.render_scene)
``train``    ultralytics trainer arguments (epochs, batch, imgsz, optimizer, lr0, momentum, weight_decay, mosaic,
             workers, seed, deterministic, amp, ...); the device is ``--device`` (default auto: CUDA when present)
``out``      where the plain weights file goes: a path, relative to the weights directory unless absolute or
             starting with ``./`` (``--out`` overrides)

The frames are written once as a YOLO folder under ``--work`` (default ``runs/detection/<NAME>``), ultralytics
trains there, and the best checkpoint (by validation fitness) is converted to the plain weights format
(``downstream.detection.yolo``), with the config, the data summary and the final validation mAP in its ``meta``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from downstream.sample import LABEL_BOXES
from downstream.task_training import (
    add_keep_absent_option,
    add_source_options,
    claim_run_folder,
    dataset_classes,
    starting_weights,
    write_task_yaml,
)
from sr import cli
from sr.cli import cli_entry
from sr.errors import ConfigError, UserError, check_keys
from sr.ownership import add_overwrite_option
from sr.registry import Registry

_KEYS = {"description", "model", "init", "classes", "data", "train", "out"}
#: ``--model`` choices: ultralytics model yaml and the registry name of its COCO starting point
MODELS = {"yolov5n": ("yolov5n.yaml", "yolov5nu_coco"), "yolov5s": ("yolov5s.yaml", "yolov5su_coco")}
WEIGHTS_FILE = "detector.pt"


#: detector training configs: configs/detection/<name>.yaml or a YAML path (``base:`` inherits)
CONFIGS = Registry(
    "detection training config", configs="detection", keys=_KEYS, required=("model", "classes", "data", "train")
)


def load_config(name: str) -> tuple[dict[str, Any], str]:
    """Config ``name`` (keys checked, ``base:`` resolved) and its name."""
    path = CONFIGS.path(name)
    cfg = CONFIGS.config(str(path))
    for split in ("train", "val"):
        if split not in cfg["data"]:
            raise ConfigError(f"{path}: data needs a {split!r} source")
    return cfg, path.stem


def _source_arrays(spec: dict[str, Any], classes: list[str]):
    """(id, uint8 image, boxes) of a data source (see the module docstring)."""
    spec = dict(spec)
    if "synthir" in spec:
        from downstream.datasets.synthir import M3FD_CLASSES, render_scene

        if list(classes) != list(M3FD_CLASSES):
            raise ConfigError(f"synthir boxes use the M3FD classes {M3FD_CLASSES}, not {classes}")
        opts = {"first_seed": 0, "count": 100, "height": 240, "width": 320, **(spec["synthir"] or {})}
        check_keys("synthir source", opts, {"first_seed", "count", "height", "width"})

        def gen():
            for seed in range(int(opts["first_seed"]), int(opts["first_seed"]) + int(opts["count"])):
                scene = render_scene(seed, int(opts["height"]), int(opts["width"]))
                yield f"synthir_{seed:06d}", scene.image, scene.boxes

        return gen(), {"synthir": opts}
    if "dataset" in spec:
        from downstream.datasets import load_dataset
        from downstream.detection.data import sample_arrays

        name = spec.pop("dataset")
        dataset = load_dataset(name, **spec)
        have = dataset.classes(LABEL_BOXES)
        if have is None or list(have) != list(classes):
            raise ConfigError(f"data set {name!r} has classes {have}, the config {classes}")
        return sample_arrays(dataset.load(i) for i in dataset.ids()), {"dataset": name, **spec, "n": len(dataset.ids())}
    raise ConfigError(f"a data source needs 'dataset' or 'synthir', got {sorted(spec)}")


def run(
    cfg: dict[str, Any],
    name: str,
    *,
    work: Path,
    out: Path | None,
    device: str | None,
    weights_dir: str | None,
    scratch: bool = False,
    trust_pickle: bool = False,
) -> Path:
    """Train; returns the weights file (its meta records the data, with the training split's boxes per class)."""
    from downstream.detection.data import write_data_yaml, write_split_from_arrays
    from downstream.detection.yolo import load_detector, load_weights, save_weights, train, validate
    from sr.weights import sha256_of
    from sr.weights import weights_dir as resolve_weights_dir

    classes = list(cfg["classes"])
    data_root = work / "data"
    summary = {}
    for split in ("train", "val"):
        arrays, info = _source_arrays(cfg["data"][split], classes)
        boxes = np.zeros(len(classes), np.int64)
        n = write_split_from_arrays(data_root, split, _count_boxes(arrays, boxes))
        if n == 0:
            raise UserError(f"the {split} source of {name} has no frames")
        summary[split] = {**info, "frames": n, "boxes_per_class": dict(zip(classes, boxes.tolist()))}
    data_yaml = write_data_yaml(data_root, classes, {"train": "train", "val": "val"})

    init_model, init_info = None, None
    if cfg.get("init") and not scratch:
        init_model, init_path, _ = load_detector(cfg["init"], weights_dir, trust_pickle=trust_pickle)
        init_info = {"init": str(cfg["init"]), "init_sha256": sha256_of(init_path)}
    args = dict(cfg["train"])
    args["device"] = device or cli.DEVICE_AUTO  # the project's spelling; yolo.train / validate translate it
    start = time.time()
    best = train(cfg["model"], data_yaml, args, init=init_model, out_dir=work / "runs")
    seconds = time.time() - start

    from downstream.detection.yolo import load_ultralytics_checkpoint

    model = load_ultralytics_checkpoint(best)  # our own fresh checkpoint, read with the allowlist all the same
    model.names = dict(enumerate(classes))
    imgsz = int(args.get("imgsz", 640))
    metrics, _ = validate(
        model,
        data_yaml,
        imgsz=imgsz,
        conf=0.001,
        iou=0.7,
        batch=int(args.get("batch", 16)),
        device=args["device"],
        workdir=work / "runs",
    )
    if out is None:
        out_cfg = Path(str(cfg.get("out") or f"{name}.pt"))
        out = (
            out_cfg
            if out_cfg.is_absolute() or str(cfg.get("out", "")).startswith("./")
            else resolve_weights_dir(weights_dir) / out_cfg
        )
    meta = {
        "config": name,
        "model": cfg["model"],
        "train": args,
        "data": summary,
        "seconds": round(seconds, 1),
        "val_mAP50-95": float(metrics.box.map),
        "val_mAP50": float(metrics.box.map50),
        "init": init_info or "scratch",
        "ultralytics": __import__("ultralytics").__version__,
    }
    save_weights(model, out, imgsz=imgsz, meta=json.loads(json.dumps(meta, default=str)))
    load_weights(out)  # the file reads back with weights_only=True
    print(
        f"wrote {out} (val mAP50-95 {metrics.box.map:.4f}, mAP50 {metrics.box.map50:.4f}, "
        f"{seconds / 60:.1f} min of training)"
    )
    return out


def trained_boxes_per_class(weights: Path) -> dict[str, int]:
    """The training split's boxes per class that :func:`run` recorded in the weights file's meta."""
    from downstream.detection.yolo import load_weights

    return dict(load_weights(weights)[1]["meta"]["data"]["train"]["boxes_per_class"])


def _count_boxes(arrays, counts: np.ndarray):
    """``arrays`` passed through, adding each frame's boxes per class id to ``counts`` (the split's class counts,
    recorded in the weights' meta and in RUN/task.yaml's ``train_counts``)."""
    for sample_id, image, boxes in arrays:
        if boxes is not None and len(boxes):
            counts += np.bincount(np.asarray(boxes)[:, 0].astype(np.int64), minlength=len(counts))[: len(counts)]
        yield sample_id, image, boxes


def dataset_training_config(
    dataset: str, *, model: str, epochs: int, imgsz: int, batch: int, limit: int | None, weights_dir: str | None
) -> dict[str, Any]:
    """A training config (the keys of ``configs/detection/*.yaml``) for a data-set YAML's train / val splits."""
    from downstream.datasets import load_dataset

    classes = dataset_classes(dataset, LABEL_BOXES, "detection boxes", "downstream.detection.prepare")
    val_split = "val" if load_dataset(dataset, split="val").ids() else "train"
    model_yaml, init = MODELS[model]
    init = starting_weights(init, weights_dir, "detection.train")
    extra = {"limit": limit} if limit else {}
    return {
        "description": f"{model} trained on {dataset}",
        "model": model_yaml,
        "init": init,
        "classes": classes,
        "data": {
            "train": {"dataset": dataset, "split": "train", **extra},
            "val": {"dataset": dataset, "split": val_split, **extra},
        },
        "train": {
            "epochs": epochs,
            "batch": batch,
            "imgsz": imgsz,
            "hsv_h": 0.0,
            "hsv_s": 0.0,
            "workers": 0,
            "seed": 0,
            "deterministic": True,
            "amp": False,
            "plots": False,
        },
    }


def write_detection_task(
    run_dir: Path,
    weights: Path,
    cfg: dict[str, Any],
    dataset: str,
    train_counts: dict[str, int],
    keep_absent_classes: bool = False,
) -> Path:
    """``RUN/task.yaml``: a detection task config bound to ``weights`` and the data set's classes, with the training
    split's boxes per class (``train_counts``: a class with none is flagged and left out of ``all``)."""
    scratch = cfg["init"] is None
    options = {
        "weights": weights,
        "model": cfg["model"],
        "imgsz": int(cfg["train"]["imgsz"]),
        "classes": list(cfg["classes"]),
        "conf": 0.001,
        "iou": 0.7,
        "max_det": 300,
        "batch": 16,
        "ap_method": "coco",
        "scratch_init": scratch,
    }
    description = (
        f"{Path(cfg['model']).stem} trained on {dataset} by python -m downstream.detection.train "
        f"({'from scratch' if scratch else 'from ' + cfg['init']}, {cfg['train']['epochs']} "
        f"epochs at {cfg['train']['imgsz']})"
    )
    factory = "downstream.detection.task:DetectionTask"
    return write_task_yaml(run_dir, description, factory, options, train_counts, keep_absent_classes)


def _parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m downstream.detection.train", description=__doc__.split("\n")[0])
    add_source_options(parser, "configs/detection/<NAME>.yaml or a YAML path", "detector")
    parser.add_argument(
        "--out",
        help="--config: weights file to write (default: the config's 'out'); --dataset: the run folder (required)",
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="yolov5n", help="--dataset: the detector")
    parser.add_argument("--imgsz", type=cli.positive_int, default=640, help="--dataset: training and evaluation size")
    parser.add_argument("--batch", type=cli.positive_int, default=16, help="--dataset: batch size")
    parser.add_argument(
        "--limit", type=cli.positive_int, help="--dataset: use only the first N frames of each split (smoke runs)"
    )
    parser.add_argument("--work", help="scratch folder (default: runs/detection/<NAME>)")
    parser.add_device()
    parser.add_weights_dir()
    parser.add_argument("--scratch", action="store_true", help="ignore 'init': train from random weights")
    parser.add_argument("--epochs", type=cli.positive_int, help="override train.epochs")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow an unrestricted unpickle of the init checkpoint (trusted files only)",
    )
    add_keep_absent_option(parser, "box", "the 'all' rows")
    add_overwrite_option(parser)
    return parser


def _train_for_dataset(opts) -> int:
    """--dataset: a detector for a prepared data set's classes, its weights and RUN/task.yaml in the run folder."""
    entries = (WEIGHTS_FILE, "work/")
    run_dir = claim_run_folder(opts.out, opts.dataset, "detection training run", entries, opts.overwrite)
    cfg = dataset_training_config(
        opts.dataset,
        model=opts.model,
        epochs=opts.epochs or 100,
        imgsz=opts.imgsz,
        batch=opts.batch,
        limit=opts.limit,
        weights_dir=opts.weights_dir,
    )
    weights = run(
        cfg,
        opts.model,
        work=Path(opts.work) if opts.work else run_dir / "work",
        out=run_dir / WEIGHTS_FILE,
        device=opts.device,
        weights_dir=opts.weights_dir,
        scratch=opts.scratch,
        trust_pickle=opts.trust_pickle,
    )
    if opts.scratch:
        cfg["init"] = None
    train_counts = trained_boxes_per_class(weights)
    task_yaml = write_detection_task(run_dir, weights, cfg, opts.dataset, train_counts, opts.keep_absent_classes)
    print(f"wrote {task_yaml}")
    return 0


@cli_entry
def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    if opts.dataset:
        return _train_for_dataset(opts)
    cfg, name = load_config(opts.config)
    if opts.epochs:
        cfg["train"]["epochs"] = opts.epochs
    run(
        cfg,
        name,
        work=Path(opts.work or f"runs/detection/{name}"),
        out=Path(opts.out) if opts.out else None,
        device=opts.device,
        weights_dir=opts.weights_dir,
        scratch=opts.scratch,
        trust_pickle=opts.trust_pickle,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
