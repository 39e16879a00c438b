"""Train SegFormer on a harness data set: ``python -m downstream.segmentation.train --config <yaml>``.

A plain PyTorch loop (no mmengine Runner, so nothing needs the network or compiled ops): AdamW with
mmseg's SegFormer parameter groups (head lr x ``head_lr_mult``, no weight decay on norms), linear
warm-up then poly decay, cross-entropy with ``ignore_index=255`` on logits upsampled to the crop.
Augmentation: random rescale, random crop (padded with label 255), horizontal flip, optional
brightness/contrast jitter. Every random draw derives from ``seed`` and the iteration number, so a
resumed run sees the same batches as an uninterrupted one.

Config (YAML, ``configs/segmentation/*.yaml``)::

    model:    {variant: mit_b1, num_classes: 15, drop_path_rate: 0.1,
               pretrained: mit_b1_imagenet}        # registry name or path; used when present
    data:     {dataset: fmb_train, options: {}}    # any load_dataset name (HR frames + masks)
              # or {synthir: {seeds: [start, stop], height: 240, width: 320}} rendered in memory
    ignore_classes: [unlabeled]                    # label ids mapped to 255 (not trained on)
    train:    {iters: 25000, batch_size: 8, lr: 6.0e-5, weight_decay: 0.01, betas: [0.9, 0.999],
               head_lr_mult: 10, warmup_iters: 1500, warmup_ratio: 1.0e-6, poly_power: 1.0,
               min_lr: 0.0, crop_size: [512, 512], scale_range: [0.5, 2.0], flip: true,
               photometric: true, seed: 0, num_workers: 2, cache: false, device: auto, threads: 0}
    output:   {dir: work_dirs/segformer_b1_fmb, checkpoint_every: 1000, log_every: 50,
               export: null}                       # also copy the final weights here

``train.device`` is for ``train()`` called from Python; the command line always sets it from ``--device``
(default ``auto``: CUDA when present, else CPU), like every other entry point.

Or, for a data set of your own (``python -m downstream.segmentation.prepare masks ...``)::

    python -m downstream.segmentation.train --dataset OUT/dataset.yaml --out RUN [--model mit_b0|mit_b1]
        [--iters N] [--crop N] [--batch N] [--limit N] [--device D]

trains on the data set's ``train`` split (HR frames) with its own classes and writes ``RUN/segmenter.pth`` and
``RUN/task.yaml``: a segmentation task config bound to those weights and classes, for
``python -m benchmarks.run --tasks RUN/task.yaml``. The MiT backbone starts from its ImageNet weights
(``mit_b0_imagenet`` / ``mit_b1_imagenet``) when the file is in the weights directory, from random weights
otherwise; a scratch start is recorded in task.yaml (``scratch_init: true``) and flags every row made with it.
task.yaml also records the training split's labelled pixels per class (``train_counts``): a class with none there is
flagged ``class_absent_in_training`` and left out of mIoU, unless ``--keep-absent-classes`` keeps it (flagged).

Outputs in ``output.dir``: ``last.pth`` (resume state: model, optimizer, iteration, torch RNG; tensors and
plain Python values only, readable with ``weights_only=True``), ``final.pth`` (plain model state
dict) and ``train_log.jsonl``. A rerun with the same config resumes from ``last.pth``
(``--no-resume`` starts over).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from downstream.sample import IGNORE_INDEX, LABEL_MASK
from downstream.task_training import (
    add_keep_absent_option,
    add_source_options,
    claim_run_folder,
    dataset_classes,
    starting_weights,
    write_task_yaml,
)
from sr import cli
from sr.checkpoint import load_checkpoint
from sr.cli import cli_entry
from sr.config import check_values, schema_of
from sr.errors import ConfigError, UserError, check_keys
from sr.ownership import add_overwrite_option
from sr.registry import Registry

DEFAULT_TRAIN = dict(
    iters=25000,
    batch_size=8,
    lr=6.0e-5,
    weight_decay=0.01,
    betas=[0.9, 0.999],
    head_lr_mult=10.0,
    warmup_iters=1500,
    warmup_ratio=1.0e-6,
    poly_power=1.0,
    min_lr=0.0,
    crop_size=[512, 512],
    scale_range=[0.5, 2.0],
    flip=True,
    photometric=True,
    seed=0,
    num_workers=2,
    cache=False,
    device="auto",
    threads=0,
)
DEFAULT_OUTPUT = dict(dir="work_dirs/segformer", checkpoint_every=1000, log_every=50, export=None)
DEFAULT_MODEL = dict(variant="mit_b1", num_classes=15, drop_path_rate=0.1, pretrained=None)


# ---------------------------------------------------------------------------------------------- config

#: segmentation training configs: configs/segmentation/<name>.yaml or a YAML path (``base:`` inherits)
CONFIGS = Registry(
    "segmentation training config", configs="segmentation", keys={"model", "data", "train", "output", "ignore_classes"}
)


def load_config(name: str | os.PathLike) -> dict[str, Any]:
    """Config ``name`` with the defaults filled in; unknown keys and values of the wrong type are ConfigErrors."""
    path = CONFIGS.path(str(name))
    raw = CONFIGS.config(str(path))
    cfg = {
        "model": {**DEFAULT_MODEL, **(raw.get("model") or {})},
        "data": dict(raw.get("data") or {}),
        "train": {**DEFAULT_TRAIN, **(raw.get("train") or {})},
        "output": {**DEFAULT_OUTPUT, **(raw.get("output") or {})},
        "ignore_classes": list(raw.get("ignore_classes") or []),
    }
    for section, defaults in (("model", DEFAULT_MODEL), ("train", DEFAULT_TRAIN), ("output", DEFAULT_OUTPUT)):
        check_values(f"{path}: {section}", cfg[section], schema_of(defaults))
    check_keys(f"{path}: data", cfg["data"], {"dataset", "options", "synthir"})
    if ("dataset" in cfg["data"]) == ("synthir" in cfg["data"]):
        raise ConfigError(f"{path}: data needs exactly one of 'dataset' (a data-set name) or 'synthir' (seeds)")
    return cfg


# ------------------------------------------------------------------------------------------------ data


class SegmentationFrames:
    """Indexable (image float32 [C, H, W] in [0, 1], label int64 [H, W]) training frames."""

    def __init__(
        self, data: dict[str, Any], class_names: tuple[str, ...] | None, ignore_classes: list[str], cache: bool
    ):
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.synthir = data.get("synthir")
        if self.synthir is not None:
            from downstream.datasets.synthir import FMB_CLASSES

            spec = dict(self.synthir)
            check_keys("data.synthir", spec, {"seeds", "height", "width"})
            start, stop = (int(s) for s in spec["seeds"])
            self.seeds = list(range(start, stop))
            self.size = (int(spec.get("height", 240)), int(spec.get("width", 320)))
            self.class_names = FMB_CLASSES
            self.ids = [str(s) for s in self.seeds]
            self.dataset = None
        else:
            from downstream.datasets import load_dataset

            self.dataset = load_dataset(str(data["dataset"]), **(data.get("options") or {}))
            classes = self.dataset.classes(LABEL_MASK)
            if classes is None:
                raise ConfigError(f"data set {data['dataset']!r} has no segmentation masks")
            self.class_names = tuple(classes)
            self.ids = self.dataset.ids()
        if not self.ids:
            raise UserError("the training data set is empty")
        unknown = [c for c in ignore_classes if c not in self.class_names]
        if unknown:
            raise ConfigError(f"ignore_classes {unknown} are not classes of the data ({', '.join(self.class_names)})")
        self.ignored = [self.class_names.index(c) for c in ignore_classes]
        self.keep_cache = cache or self.synthir is not None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index in self.cache:
            return self.cache[index]
        if self.synthir is not None:
            from downstream.datasets.synthir import render_scene

            scene = render_scene(self.seeds[index], *self.size)
            image = torch.from_numpy(scene.image.astype(np.float32) / 255.0)[None]
            mask = scene.mask
        else:
            sample = self.dataset.load(self.ids[index])
            if sample.hr is None or sample.mask is None:
                raise UserError(f"training sample {self.ids[index]!r} has no HR frame or mask")
            image, mask = sample.hr.float(), sample.mask
        label = torch.from_numpy(np.asarray(mask).astype(np.int64))
        if self.ignored:
            label[torch.isin(label, torch.tensor(self.ignored))] = IGNORE_INDEX
        if self.keep_cache:
            self.cache[index] = (image, label)
        return image, label


def augment(
    image: torch.Tensor, label: torch.Tensor, rng: np.random.Generator, tcfg: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rescale, crop (pad with 0 / 255), flip and photometric jitter of one frame."""
    lo, hi = (float(s) for s in tcfg["scale_range"])
    scale = rng.uniform(lo, hi)
    h, w = image.shape[-2:]
    nh, nw = max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)
    if (nh, nw) != (h, w):
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        label = F.interpolate(label[None, None].float(), size=(nh, nw), mode="nearest")[0, 0].long()
    ch, cw = (int(c) for c in tcfg["crop_size"])
    ph, pw = max(ch - nh, 0), max(cw - nw, 0)
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph), value=0.0)
        label = F.pad(label, (0, pw, 0, ph), value=IGNORE_INDEX)
    y0 = int(rng.integers(0, image.shape[-2] - ch + 1))
    x0 = int(rng.integers(0, image.shape[-1] - cw + 1))
    image, label = image[:, y0 : y0 + ch, x0 : x0 + cw], label[y0 : y0 + ch, x0 : x0 + cw]
    if tcfg["flip"] and rng.random() < 0.5:
        image, label = image.flip(-1), label.flip(-1)
    if tcfg["photometric"]:
        contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-0.1, 0.1)
        mean = image.mean()
        image = ((image - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.contiguous(), label.contiguous()


class BatchStream(torch.utils.data.Dataset):
    """Item ``it`` = the whole augmented batch of iteration ``it`` (deterministic in seed and it)."""

    def __init__(self, source: SegmentationFrames, tcfg: dict[str, Any]):
        self.source, self.tcfg = source, tcfg

    def __len__(self) -> int:
        return int(self.tcfg["iters"])

    def __getitem__(self, it: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([int(self.tcfg["seed"]), int(it)])
        picks = rng.integers(0, len(self.source), size=int(self.tcfg["batch_size"]))
        pairs = [augment(*self.source[int(i)], rng, self.tcfg) for i in picks]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def batches(
    source: SegmentationFrames, tcfg: dict[str, Any], start: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of iterations ``start..iters``; creating the iterator draws once from torch's RNG."""
    stream = BatchStream(source, tcfg)
    workers = int(tcfg["num_workers"]) if source.synthir is None else 0
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(stream, range(start, len(stream))),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        persistent_workers=False,
    )
    return iter(loader)


# ------------------------------------------------------------------------------------------- optimiser


def param_groups(model: torch.nn.Module, tcfg: dict[str, Any]) -> list[dict[str, Any]]:
    """mmseg's SegFormer groups: head lr x head_lr_mult; norms, pos blocks and biases without decay."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    norm_params = set()
    for module in model.modules():
        if isinstance(module, (torch.nn.LayerNorm, torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)):
            norm_params.update(id(p) for p in module.parameters(recurse=False))
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        head = name.startswith("decode_head.")
        no_decay = id(param) in norm_params or "pos_block" in name
        groups.setdefault((head, no_decay), []).append(param)
    out = []
    for (head, no_decay), params in sorted(groups.items()):
        lr_mult = float(tcfg["head_lr_mult"]) if head else 1.0
        out.append(
            {"params": params, "lr_mult": lr_mult, "weight_decay": 0.0 if no_decay else float(tcfg["weight_decay"])}
        )
    return out


def lr_factor(it: int, tcfg: dict[str, Any]) -> float:
    """mmseg's SegFormer schedule: LinearLR from ``warmup_ratio`` to 1 over ``warmup_iters``, then
    PolyLR from the end of the warm-up to ``iters`` (factor ``(1 - t)^power``, floor ``min_lr``)."""
    iters, warm = int(tcfg["iters"]), min(int(tcfg["warmup_iters"]), int(tcfg["iters"]))
    if it < warm:
        ratio = float(tcfg["warmup_ratio"])
        return ratio + (1.0 - ratio) * it / warm
    base = float(tcfg["lr"])
    min_factor = float(tcfg["min_lr"]) / base if base > 0 else 0.0
    t = min(it - warm, iters - warm) / max(iters - warm, 1)
    return (1.0 - t) ** float(tcfg["poly_power"]) * (1.0 - min_factor) + min_factor


def set_lr(optimizer: torch.optim.Optimizer, it: int, tcfg: dict[str, Any]) -> float:
    factor = lr_factor(it, tcfg)
    for group in optimizer.param_groups:
        group["lr"] = float(tcfg["lr"]) * group["lr_mult"] * factor
    return float(tcfg["lr"]) * factor


# ------------------------------------------------------------------------------------------------ main


def _resolve_optional(name_or_path: str) -> Path | None:
    """The pretrained backbone's file; None (random initialisation, said on stderr) when it is a registry entry
    whose file is missing; any other miss is resolve_weights' error."""
    from sr.errors import MissingWeightsError
    from sr.weights import resolve_weights

    try:
        return resolve_weights(name_or_path, what="model.pretrained")
    except MissingWeightsError as exc:
        print(f"[segmentation.train] {exc} Training from random initialisation.", file=sys.stderr)
        return None


def _model_and_optimizer(
    mcfg: dict[str, Any], tcfg: dict[str, Any], num_classes: int, device: torch.device
) -> tuple[torch.nn.Module, torch.optim.Optimizer, str | None]:
    """The SegFormer (the pretrained backbone loaded when there is one), its AdamW, and the backbone's path."""
    from downstream.segmentation.model import build_segformer, load_backbone_weights

    model = build_segformer(mcfg["variant"], num_classes, drop_path_rate=float(mcfg["drop_path_rate"]))
    pretrained_used = None
    if mcfg.get("pretrained"):
        path = _resolve_optional(str(mcfg["pretrained"]))
        if path is not None:
            load_backbone_weights(model, path)
            pretrained_used = str(path)
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        param_groups(model, tcfg),
        lr=float(tcfg["lr"]),
        betas=tuple(float(b) for b in tcfg["betas"]),
        weight_decay=float(tcfg["weight_decay"]),
    )
    return model, optimizer, pretrained_used


def _resume(last: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, torch.Tensor | None]:
    """Model and optimizer restored from ``last``; (the iteration to start at, torch's RNG state or None)."""
    state = load_checkpoint(last)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    start = int(state["iter"])
    print(f"[segmentation.train] resumed from {last} at iteration {start}", file=sys.stderr)
    return start, state.get("torch_rng")


def _checkpoint(last: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, it: int) -> None:
    from sr.atomic import atomic_path

    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "iter": it,
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(last) as tmp:
        torch.save(state, tmp)


def _step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    tcfg: dict[str, Any],
    it: int,
) -> tuple[float, float]:
    """One iteration (skipped when the loss is not finite); (its loss, its learning rate)."""
    from downstream.segmentation.model import preprocess, train_logits

    lr = set_lr(optimizer, it, tcfg)
    x = preprocess(images.to(device))
    y = labels.to(device)
    logits = train_logits(model, x)
    logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
    optimizer.zero_grad(set_to_none=True)
    if torch.isfinite(loss):
        loss.backward()
        optimizer.step()
    return float(loss.detach()), lr


def train(cfg: dict[str, Any], resume: bool = True, max_iters: int | None = None) -> Path:
    """Run (or resume) a training; returns the path of the final plain state dict."""
    from downstream.segmentation.model import save_state_dict
    from sr.runtime import resolve_device

    mcfg, tcfg, ocfg = cfg["model"], cfg["train"], cfg["output"]
    if int(tcfg["threads"]) > 0:
        torch.set_num_threads(int(tcfg["threads"]))
    device = torch.device(resolve_device(tcfg["device"]))
    out_dir = Path(ocfg["dir"])
    out_dir.mkdir(parents=True, exist_ok=True)

    source = SegmentationFrames(cfg["data"], None, cfg["ignore_classes"], bool(tcfg["cache"]))
    num_classes = int(mcfg["num_classes"])
    if num_classes != len(source.class_names):
        raise ConfigError(f"model.num_classes={num_classes} but the data has {len(source.class_names)} classes")

    torch.manual_seed(int(tcfg["seed"]))
    model, optimizer, pretrained_used = _model_and_optimizer(mcfg, tcfg, num_classes, device)
    start, rng = 0, None
    last = out_dir / "last.pth"
    if resume and last.is_file():
        start, rng = _resume(last, model, optimizer)

    batch_iter = batches(source, tcfg, start)
    if start and rng is not None:
        torch.set_rng_state(rng)  # after the loader's own draw, as in an uninterrupted run
    stop = int(tcfg["iters"]) if max_iters is None else min(int(tcfg["iters"]), start + max_iters)
    t0, seen, running = time.time(), 0, 0.0
    it = start
    # one line per iteration with its rate and ETA (stderr), besides the JSON records every log_every iterations
    progress = tqdm(total=stop, initial=it, desc="segmentation.train", unit="it", file=sys.stderr, mininterval=1.0)
    with open(out_dir / "train_log.jsonl", "a") as log, progress:
        if start == 0:
            start_rec = {"event": "start", "config": cfg, "pretrained": pretrained_used}
            log.write(json.dumps({**start_rec, "classes": list(source.class_names)}, default=str) + "\n")
        for images, labels in batch_iter:
            if it >= stop:
                break
            loss, lr = _step(model, optimizer, images, labels, device, tcfg, it)
            it += 1
            seen += 1
            running += loss
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if it % int(ocfg["log_every"]) == 0 or it == stop:
                rec = {"iter": it, "loss": running / max(seen, 1), "lr": lr, "elapsed_s": round(time.time() - t0, 1)}
                print(json.dumps(rec), flush=True)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                running, seen = 0.0, 0
            if it % int(ocfg["checkpoint_every"]) == 0 or it == stop:
                _checkpoint(last, model, optimizer, it)
    if it < int(tcfg["iters"]):
        print(f"[segmentation.train] stopped at iteration {it} of {tcfg['iters']}; rerun to resume", file=sys.stderr)
        return last
    final = save_state_dict(model, out_dir / "final.pth")
    if ocfg.get("export"):
        save_state_dict(model, ocfg["export"])
        print(f"[segmentation.train] exported weights to {ocfg['export']}", file=sys.stderr)
    print(f"[segmentation.train] done in {time.time() - t0:.0f} s: {final}", file=sys.stderr)
    return final


WEIGHTS_FILE = "segmenter.pth"


def dataset_training_config(
    dataset: str,
    run_dir: Path,
    *,
    variant: str,
    iters: int,
    crop: int,
    batch: int,
    limit: int | None,
    device: str | None,
) -> dict[str, Any]:
    """A training config for the train split of a data-set YAML, exporting ``RUN/segmenter.pth``."""
    from downstream.segmentation.model import VARIANTS

    classes = dataset_classes(dataset, LABEL_MASK, "segmentation masks", "downstream.segmentation.prepare")
    pretrained = VARIANTS[variant].pretrained
    pretrained = starting_weights(pretrained, None, "segmentation.train") if pretrained else None
    options = {"split": "train", **({"limit": limit} if limit else {})}
    return {
        "model": {**DEFAULT_MODEL, "variant": variant, "num_classes": len(classes), "pretrained": pretrained},
        "data": {"dataset": dataset, "options": options},
        "train": {
            **DEFAULT_TRAIN,
            "iters": iters,
            "batch_size": batch,
            "crop_size": [crop, crop],
            "warmup_iters": min(DEFAULT_TRAIN["warmup_iters"], iters // 10),
            "num_workers": 0,
            "cache": True,
            "device": device or "auto",
        },
        "output": {
            **DEFAULT_OUTPUT,
            "dir": str(run_dir),
            "export": str(run_dir / WEIGHTS_FILE),
            "checkpoint_every": max(iters // 10, 1),
            "log_every": max(min(50, iters // 10), 1),
        },
        "ignore_classes": [],
        "classes": classes,
    }


def class_pixel_counts(data: dict[str, Any], ignore_classes: list[str]) -> dict[str, int]:
    """Labelled pixels per class of the training frames ``data`` (a config's ``data``; ignored classes count 0):
    RUN/task.yaml's ``train_counts``, from which the task flags a class the model never saw."""
    source = SegmentationFrames(data, None, ignore_classes, cache=False)
    counts = np.zeros(len(source.class_names), np.int64)
    for i in range(len(source)):
        label = source[i][1].numpy().ravel()
        label = label[(label >= 0) & (label < len(counts))]  # IGNORE_INDEX (255) is no class
        counts += np.bincount(label, minlength=len(counts))
    return dict(zip(source.class_names, counts.tolist()))


def write_segmentation_task(
    run_dir: Path, cfg: dict[str, Any], dataset: str, train_counts: dict[str, int], keep_absent_classes: bool = False
) -> Path:
    """``RUN/task.yaml``: a segmentation task config bound to the exported weights and the data set's classes, with
    the training split's labelled pixels per class (``train_counts``: a class with none is flagged and left out of
    mIoU unless ``keep_absent_classes``)."""
    scratch = cfg["model"]["pretrained"] is None
    variant = cfg["model"]["variant"]
    description = (
        f"SegFormer ({variant}) trained on {dataset} by python -m downstream.segmentation.train "
        f"({'from scratch' if scratch else 'from ' + cfg['model']['pretrained']}, "
        f"{cfg['train']['iters']} iterations, crop {cfg['train']['crop_size'][0]})"
    )
    options = {
        "weights": cfg["output"]["export"],
        "variant": variant,
        "mode": "whole",
        "classes": list(cfg["classes"]),
        "scratch_init": scratch,
    }
    factory = "downstream.segmentation.task:SegmentationTask"
    return write_task_yaml(run_dir, description, factory, options, train_counts, keep_absent_classes)


def _parser() -> cli.ArgumentParser:
    from downstream.segmentation.model import VARIANTS

    parser = cli.ArgumentParser(prog="python -m downstream.segmentation.train", description=__doc__.split("\n")[0])
    add_source_options(parser, "configs/segmentation/<NAME>.yaml or a YAML path", "segmenter")
    parser.add_argument("--model", choices=sorted(VARIANTS), default="mit_b0", help="--dataset: the backbone")
    parser.add_argument("--crop", type=cli.positive_int, default=512, help="--dataset: square training crop (pixels)")
    parser.add_argument("--batch", type=cli.positive_int, default=8, help="--dataset: batch size")
    parser.add_argument(
        "--limit", type=cli.positive_int, help="--dataset: use only the first N training frames (smoke runs)"
    )
    parser.add_argument("--out", help="override output.dir (--dataset: the run folder, required)")
    parser.add_argument("--export", help="override output.export (copy of the final weights)")
    parser.add_argument("--iters", type=cli.positive_int, help="override train.iters")
    parser.add_device()
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing last.pth")
    parser.add_argument(
        "--max-iters", type=cli.positive_int, help="stop after this many iterations in this run (resumable)"
    )
    add_keep_absent_option(parser, "pixel", "mIoU")
    add_overwrite_option(parser)
    return parser


def _train_for_dataset(args) -> int:
    """--dataset: a segmenter for a prepared data set's classes, its weights and RUN/task.yaml in the run folder."""
    entries = (WEIGHTS_FILE, "last.pth", "final.pth", "train_log.jsonl")
    run_dir = claim_run_folder(args.out, args.dataset, "segmentation training run", entries, args.overwrite)
    cfg = dataset_training_config(
        args.dataset,
        run_dir,
        variant=args.model,
        iters=args.iters or 2000,
        crop=args.crop,
        batch=args.batch,
        limit=args.limit,
        device=args.device,
    )
    task_cfg = {k: v for k, v in cfg.items() if k != "classes"}
    train(task_cfg, resume=not args.no_resume, max_iters=args.max_iters)
    if Path(cfg["output"]["export"]).is_file():
        counts = class_pixel_counts(task_cfg["data"], task_cfg["ignore_classes"])
        task_yaml = write_segmentation_task(run_dir, cfg, args.dataset, counts, args.keep_absent_classes)
        print(f"wrote {task_yaml}")
    return 0


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.dataset:
        return _train_for_dataset(args)
    cfg = load_config(args.config)
    if args.out:
        cfg["output"]["dir"] = args.out
    if args.export:
        cfg["output"]["export"] = args.export
    if args.iters:
        cfg["train"]["iters"] = args.iters
    cfg["train"]["device"] = args.device  # --device (default auto) is the device, whatever the config says
    train(cfg, resume=not args.no_resume, max_iters=args.max_iters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
