"""YOLO detectors on ultralytics: build, save/load (safely), train, and validate with the predictions kept.

Model. ``yolov5s.yaml`` in ultralytics is YOLOv5-s with the anchor-free, decoupled "v5u" head (DFL box regression,
the YOLOv8 head), not the anchor-based head of the original YOLOv5 repository; ultralytics' COCO
``yolov5su.pt`` is that model. We use it as "YOLOv5-s" (the paper's detector).

Weights files (our format, ``FORMAT = "irsr-yolo"``): a plain dict
``{"format", "version", "yaml": <model yaml dict>, "names": [...], "imgsz": int, "state_dict": {name: tensor},
"meta": {...}}`` written with ``torch.save`` and read with ``torch.load(weights_only=True)``: no pickled
objects, nothing executes when it is read. The model is rebuilt from the yaml and the state dict is loaded
strictly.

Third-party ultralytics ``.pt`` files (e.g. the COCO ``yolov5su.pt``) are pickles of whole model objects. They are
read with ``weights_only=True`` plus an allowlist that admits only module *classes* (``torch.nn.modules.*``,
``ultralytics.nn.modules.*``, ``ultralytics.nn.tasks.DetectionModel``) and ultralytics' plain namespace, each read
as an inert record: no constructor is called with the file's arguments. The model is then rebuilt from the record's
model yaml (checked by ``downstream.detection.model_yaml``: an allowlist of layer classes and argument types) and
its tensors are loaded strictly. A file that needs anything else is refused unless ``trust_pickle=True`` is given
*and* the file's sha256 matches the registry entry (or the user passes it deliberately via ``python -m
downstream.detection.yolo convert --trust-pickle``). Training runs convert ultralytics' own checkpoints to our
format at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import sys
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from downstream.detection.model_yaml import check_model_description
from downstream.detection.offline import ultralytics_offline
from sr import cli
from sr.checkpoint import CheckpointError, load_checkpoint, load_trusted_pickle
from sr.cli import cli_entry
from sr.errors import ConfigError, UserError
from sr.runtime import resolve_device
from sr.weights import resolve_weights

FORMAT = "irsr-yolo"
WHAT = "detector weights"  # names the option in sr.weights.resolve_weights' errors
VERSION = 1
_ALLOWED_PREFIXES = ("torch.nn.modules.", "ultralytics.nn.modules.")
_SHIPPED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.yaml")
_ALLOWED_NAMES = {
    "ultralytics.nn.tasks.DetectionModel",
    "ultralytics.utils.IterableSimpleNamespace",
    "types.SimpleNamespace",
}


# --------------------------------------------------------------------------------------------- model + weights


def model_description(cfg: str | dict, source: str = "the model option") -> dict:
    """The checked model yaml dict of ``cfg``: a dict as it is, or the name of a model yaml shipped with ultralytics
    (``yolov5s.yaml``; a path is refused: model descriptions are data checked by :func:`check_model_description`)."""
    if isinstance(cfg, str):
        if not _SHIPPED_NAME.fullmatch(cfg):
            raise ConfigError(
                f"{source}: model {cfg!r} must be the name of a model yaml shipped with ultralytics (e.g. "
                "yolov5s.yaml) or a model description mapping"
            )
        from ultralytics.nn.tasks import yaml_model_load

        try:
            cfg = yaml_model_load(cfg)
        except FileNotFoundError:
            raise ConfigError(f"{source}: ultralytics ships no model yaml named {cfg!r}") from None
    return check_model_description(deepcopy(cfg), source)


def build_model(
    cfg: str | dict,
    nc: int,
    names: list[str] | tuple[str, ...] | None = None,
    *,
    verbose: bool = False,
    source: str = "the model option",
) -> torch.nn.Module:
    """A fresh DetectionModel from an ultralytics model yaml name (``yolov5s.yaml``, one of the files shipped with
    ultralytics) or a yaml dict; either is checked by :func:`check_model_description` first."""
    ultralytics_offline()
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(model_description(cfg, source), nc=nc, verbose=verbose)
    names = list(names) if names is not None else [str(i) for i in range(nc)]
    if len(names) != nc:
        raise ConfigError(f"{len(names)} class names for a model with nc={nc}")
    model.names = dict(enumerate(names))
    return model


def save_weights(
    model: torch.nn.Module, path: str | Path, *, imgsz: int, meta: dict | None = None, half: bool = True
) -> Path:
    """Write ``model`` in the plain format (see the module docstring), atomically."""
    from sr.atomic import atomic_path

    model = getattr(model, "module", model)
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    names = model.names
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    yaml_cfg = {k: v for k, v in dict(model.yaml).items() if k != "yaml_file"}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "yaml": yaml_cfg,
        "names": names,
        "imgsz": int(imgsz),
        "state_dict": state,
        "meta": dict(meta or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def is_plain_weights(path: str | Path) -> bool:
    try:
        payload = load_checkpoint(path)
    except CheckpointError:
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load_weights(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from a plain weights file; returns (model in eval mode, fp32, on CPU; the payload header)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"detector weights not found: {path}")
    try:
        payload = load_checkpoint(path)
    except CheckpointError as exc:
        raise UserError(
            f"{path}: not a plain '{FORMAT}' weights file ({str(exc).splitlines()[0]}). If it is an "
            "ultralytics .pt checkpoint, convert it: python -m downstream.detection.yolo convert "
            f"{path} OUT.pt"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(
            f"{path}: not a '{FORMAT}' weights file (an ultralytics checkpoint? convert it with "
            "python -m downstream.detection.yolo convert)"
        )
    model = build_model(payload["yaml"], nc=len(payload["names"]), names=payload["names"], source=str(path))
    _match_cls_branch_width(model, payload["state_dict"])
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}, strict=True
    )
    model.float().eval()
    header = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, header


def _match_cls_branch_width(model: torch.nn.Module, state: dict) -> None:
    """Rebuild the Detect head's class branch at the width the saved weights have.

    The hidden width of ultralytics' class branch (``cv3``) is ``max(ch, min(nc, 100))``; ``DetectionModel.load``
    keeps the source's width when fine-tuning (COCO: 80), so a 6-class model fine-tuned from COCO is wider than one
    built from the yaml with nc=6. Same construction as ultralytics: the branch of a model built with nc = that
    width, its last 1x1 convolutions cut to the real class count.
    """
    head_index = len(model.model) - 1
    head = model.model[-1]
    for attr in ("cv3", "one2one_cv3"):
        key = f"model.{head_index}.{attr}.0.0.conv.weight"
        branch = getattr(head, attr, None)
        if key not in state or branch is None:
            continue
        width = int(state[key].shape[0])
        if width == branch[0][0].conv.out_channels:
            continue
        from ultralytics.nn.tasks import DetectionModel

        wide = DetectionModel(deepcopy(model.yaml), nc=width, verbose=False).model[-1]
        src = getattr(wide, attr)
        for s, d in zip(src, branch):
            s[-1] = torch.nn.Conv2d(s[-1].in_channels, d[-1].out_channels, 1)
        setattr(head, attr, src)


def _allowed_global(qualname: str) -> bool:
    """Whether a checkpoint may name ``qualname``: a torch / ultralytics network module class or ultralytics' plain
    namespaces (it is then read as a :class:`_Recorded` stand-in, never constructed)."""
    if not (qualname.startswith(_ALLOWED_PREFIXES) or qualname in _ALLOWED_NAMES):
        return False
    module, _, name = qualname.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type) and (qualname in _ALLOWED_NAMES or issubclass(obj, torch.nn.Module))


class _Recorded:
    """What the unpickler makes of an allowed class: nothing is constructed or called with the file's arguments (a
    REDUCE or NEWOBJ gets an empty record); BUILD stores the pickled attributes (``_modules``, ``_parameters``,
    ``_buffers``, ``yaml``, ``names``) as plain data, from which :func:`_state_of` collects the tensors."""

    qualname = ""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass


def _recorded(qualname: str) -> type:
    return type(f"Recorded[{qualname}]", (_Recorded,), {"qualname": qualname})


def _state_of(obj: _Recorded, prefix: str = "", depth: int = 0) -> dict[str, torch.Tensor]:
    """The state dict a module record holds (parameters and persistent buffers, by the module tree's names)."""
    if depth > 64:
        raise ValueError("module tree deeper than 64 levels")
    attrs = vars(obj)
    state = {}
    skip = attrs.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, value in (attrs.get(group) or {}).items():
            if isinstance(value, torch.Tensor) and not (group == "_buffers" and name in skip):
                state[f"{prefix}{name}"] = value
    for name, child in (attrs.get("_modules") or {}).items():
        if isinstance(child, _Recorded):
            state.update(_state_of(child, f"{prefix}{name}.", depth + 1))
    return state


def load_ultralytics_checkpoint(
    path: str | Path, *, trust_pickle: bool = False, sha256: str | None = None
) -> torch.nn.Module:
    """The model (EMA if present) of an ultralytics ``.pt`` checkpoint, rebuilt from its layer description.

    The pickle is read with ``weights_only=True``; every global it names must pass the class allowlist and is read
    as a :class:`_Recorded` stand-in, so no constructor runs with arguments from the file (``Linear(30000, 30000)``,
    ``TorchVision('resnet18', 'DEFAULT')``). The model is then built from its ``yaml`` (checked by
    :func:`check_model_description`) and the recorded tensors are loaded strictly. ``trust_pickle=True`` falls back
    to an unrestricted unpickle for files that need other globals, and only when the file's bytes hash to
    ``sha256`` (the registry's, or one the user states): see :func:`sr.checkpoint.load_trusted_pickle`.
    """
    ultralytics_offline()
    path = Path(path)
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError):
        needed = []  # not a zip archive: load_checkpoint names the problem
    refused = [name for name in needed if not _allowed_global(name)]
    if refused and trust_pickle:
        model = load_trusted_pickle(path, sha256)
        if isinstance(model, dict):
            model = model.get("ema") if model.get("ema") is not None else model.get("model")
        if not isinstance(model, torch.nn.Module):
            raise UserError(f"{path}: no ultralytics model inside")
        return model.float().eval()
    if refused:
        raise UserError(
            f"{path}: refusing to unpickle {refused[0]!r} (only torch/ultralytics module classes are "
            "allowed). If you trust this file, convert it once: python -m "
            f"downstream.detection.yolo convert --trust-pickle --sha256 <the sha256 you trust> "
            f"{path} OUT.pt (the hash is checked before anything is unpickled)"
        )
    ckpt = load_checkpoint(path, safe_globals=[(_recorded(name), name) for name in needed])
    record = ckpt
    if isinstance(ckpt, dict):
        record = ckpt.get("ema") if ckpt.get("ema") is not None else ckpt.get("model")
    attrs = vars(record) if isinstance(record, _Recorded) else {}
    if getattr(record, "qualname", "") != "ultralytics.nn.tasks.DetectionModel" or "yaml" not in attrs:
        raise UserError(f"{path}: no ultralytics model inside (keys: {list(ckpt) if isinstance(ckpt, dict) else '-'})")
    try:
        state = _state_of(record)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    names = attrs.get("names")
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names or [])
    if not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path}: the model's class names are missing or not strings")
    model = build_model(attrs["yaml"], nc=len(names), names=names, source=str(path))
    _match_cls_branch_width(model, state)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: the weights do not fit the model it describes ({_first_line(exc)})") from None
    return model.float().eval()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_detector(
    spec: str | Path, weights_dir: str | Path | None = None, *, trust_pickle: bool = False
) -> tuple[torch.nn.Module, Path, dict]:
    """Load a detector from a registry name or path, in our plain format or an ultralytics checkpoint."""
    path = resolve_weights(spec, weights_dir, what=WHAT)
    if is_plain_weights(path):
        model, header = load_weights(path)
        return model, path, header
    from sr.weights import recorded_sha256

    model = load_ultralytics_checkpoint(path, trust_pickle=trust_pickle, sha256=recorded_sha256(path, weights_dir))
    names = model.names if isinstance(model.names, dict) else dict(enumerate(model.names))
    return (
        model,
        path,
        {
            "format": "ultralytics",
            "names": [names[i] for i in sorted(names)],
            "yaml": dict(model.yaml),
            "imgsz": None,
            "meta": {},
        },
    )


# --------------------------------------------------------------------------------------------- training


def _trainer_class():
    ultralytics_offline()
    from ultralytics.models.yolo.detect import DetectionTrainer

    class Trainer(DetectionTrainer):
        """DetectionTrainer that starts from an in-memory model's weights (matching shapes only) or from scratch."""

        init_model: torch.nn.Module | None = None

        def get_model(self, cfg=None, weights=None, verbose=True):
            model = super().get_model(cfg=cfg, weights=None, verbose=verbose)
            if self.init_model is not None:
                model.load(self.init_model)
            return model

        def final_eval(self):
            """Skipped: ultralytics' own final evaluation re-reads last.pt / best.pt with an unrestricted
            ``torch.load``; our callers validate best.pt after training, read with the class allowlist
            (:func:`load_ultralytics_checkpoint`)."""

    return Trainer


def ultralytics_device(device: str | None) -> str:
    """The project's device (``auto``/None, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), checked on this machine by
    :func:`sr.runtime.resolve_device`, in ultralytics' spelling."""
    return ultralytics_spelling(resolve_device(device))


def ultralytics_spelling(device: str) -> str:
    """``cpu`` / ``cuda`` / ``cuda:N`` / ``mps`` as ultralytics spells devices: ``cpu``, ``N`` (``cuda`` is the
    first GPU), ``mps``."""
    dev = torch.device(device)
    return str(dev.index or 0) if dev.type == "cuda" else dev.type


@contextlib.contextmanager
def _process_threads_kept():
    """ultralytics' ``select_device`` sets torch's thread count for the whole process (``cpu_count - 1`` on CPU);
    put it back afterwards, so what runs next (metrics, other jobs) computes as it did before."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _ultralytics_logging(verbose: bool):
    """ultralytics' own per-epoch output (its progress bars and validation lines) while training: the offline setup
    (``YOLO_VERBOSE=False``, for the runner, which has its own progress) silences its logger; a ``verbose`` training
    turns it back on for its duration."""
    import ultralytics.utils as uutils

    logger = uutils.LOGGER
    saved = (uutils.VERBOSE, logger.level, [h.level for h in logger.handlers])
    if verbose:
        uutils.VERBOSE = True
        logger.setLevel(logging.INFO)
        for handler in logger.handlers:
            handler.setLevel(logging.INFO)
    try:
        yield
    finally:
        uutils.VERBOSE, level, handler_levels = saved
        logger.setLevel(level)
        for handler, handler_level in zip(logger.handlers, handler_levels):
            handler.setLevel(handler_level)


def train(
    model_cfg: str | dict,
    data_yaml: str | Path,
    args: dict[str, Any],
    *,
    init: torch.nn.Module | None,
    out_dir: str | Path,
) -> Path:
    """Train with ultralytics' DetectionTrainer; returns the path of best.pt (an ultralytics checkpoint)."""
    Trainer = _trainer_class()
    overrides = {
        **args,
        "model": model_cfg if isinstance(model_cfg, str) else "custom.yaml",
        "data": str(data_yaml),
        "pretrained": False,
        "project": str(Path(out_dir).resolve()),
        "name": "train",
        "exist_ok": True,
        "plots": False,
        "verbose": args.get("verbose", True),
        "device": ultralytics_device(args.get("device")),
    }
    Trainer.init_model = init
    with _process_threads_kept(), _ultralytics_logging(bool(overrides["verbose"])):
        trainer = Trainer(overrides=overrides)
        if isinstance(model_cfg, dict):
            trainer.model = build_model(
                model_cfg,
                nc=trainer.data["nc"],
                names=[trainer.data["names"][i] for i in sorted(trainer.data["names"])],
            )
            if init is not None:
                trainer.model.load(init)
        trainer.train()
    best = Path(trainer.best)
    return best if best.is_file() else Path(trainer.last)


# --------------------------------------------------------------------------------------------- validation


@dataclass
class ImagePredictions:
    """What the validator saw for one image, in pixels of the original image."""

    im_file: str
    pred: np.ndarray  # (M, 6) x1, y1, x2, y2, conf, cls (after NMS, descending confidence)
    gt: np.ndarray  # (N, 5) cls, x1, y1, x2, y2


def _validator_class():
    ultralytics_offline()
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import ops

    class CapturingValidator(DetectionValidator):
        """ultralytics' DetectionValidator that also keeps every image's predictions and ground truth."""

        def init_metrics(self, model):
            super().init_metrics(model)
            self.captured: list[ImagePredictions] = []

        def _process_batch(self, preds, batch):
            out = super()._process_batch(preds, batch)
            scaled = self.scale_preds(preds, batch)["bboxes"].float().cpu().numpy()
            pred = (
                np.concatenate(
                    [scaled, preds["conf"].float().cpu().numpy()[:, None], preds["cls"].float().cpu().numpy()[:, None]],
                    axis=1,
                )
                if len(scaled)
                else np.zeros((0, 6), np.float32)
            )
            gt_boxes = batch["bboxes"]
            if len(gt_boxes):
                gt_boxes = ops.scale_boxes(
                    batch["imgsz"], gt_boxes.clone(), batch["ori_shape"], ratio_pad=batch["ratio_pad"]
                )
            gt = np.concatenate(
                [
                    batch["cls"].float().cpu().numpy()[:, None],
                    np.asarray(gt_boxes.float().cpu().numpy()).reshape(-1, 4),
                ],
                axis=1,
            )
            self.captured.append(ImagePredictions(batch["im_file"], pred.astype(np.float64), gt.astype(np.float64)))
            return out

    return CapturingValidator


def validate(
    model: torch.nn.Module,
    data_yaml: str | Path,
    *,
    imgsz: int,
    conf: float,
    iou: float,
    batch: int,
    device: str | None,
    workdir: str | Path,
    max_det: int = 300,
    split: str = "val",
    in_place: bool = False,
):
    """Run ultralytics' detection validator on ``model`` and the ``split`` of ``data_yaml``.

    Returns (ultralytics DetMetrics, list of ImagePredictions in data-loader order). The model is deep-copied first
    (the validator may change the model it is handed: ultralytics has fused Conv+BN in place), unless ``in_place``:
    ``model`` is then a copy that the caller keeps for evaluation only and hands to every call.
    """
    Validator = _validator_class()
    args = {
        "data": str(data_yaml),
        "imgsz": int(imgsz),
        "conf": float(conf),
        "iou": float(iou),
        "batch": int(batch),
        "device": ultralytics_device(device),
        "plots": False,
        "save_json": False,
        "verbose": False,
        "project": str(Path(workdir).resolve()),
        "name": "val",
        "exist_ok": True,
        "split": split,
        "max_det": int(max_det),
        "workers": 0,
        "rect": True,
    }
    with _process_threads_kept():
        validator = Validator(args=args)
        metrics = validator(model=(model if in_place else deepcopy(model)).float().eval())
    del metrics  # a results dict; the DetMetrics object lives on the validator
    return validator.metrics, validator.captured


# --------------------------------------------------------------------------------------------- CLI


def _convert(argv: list[str]) -> int:
    parser = cli.ArgumentParser(
        prog="python -m downstream.detection.yolo convert",
        description="Convert an ultralytics .pt checkpoint to the plain weights format.",
    )
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow an unrestricted unpickle (only for files from a source you trust)",
    )
    parser.add_argument("--sha256", help="with --trust-pickle: the sha256 of SRC that you trust (checked first)")
    opts = parser.parse_args(argv)
    from sr.weights import recorded_sha256

    model = load_ultralytics_checkpoint(
        opts.src, trust_pickle=opts.trust_pickle, sha256=opts.sha256 or recorded_sha256(opts.src)
    )
    from sr.weights import sha256_of

    save_weights(
        model,
        opts.dst,
        imgsz=opts.imgsz,
        half=False,
        meta={"converted_from": str(opts.src), "source_sha256": sha256_of(opts.src)},
    )
    print(f"wrote {opts.dst}")
    return 0


@cli_entry
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "convert":
        raise cli.UsageError("usage: python -m downstream.detection.yolo convert [--trust-pickle] SRC.pt DST.pt")
    return _convert(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
