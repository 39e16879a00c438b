"""The training loop shared by every objective.

AdamW with linear warm-up then a constant / cosine / step schedule (a pure function of the step, so
nothing but the step needs saving); EMA of the weights; gradient accumulation; CUDA autocast (bf16, or
fp16 with a GradScaler); DDP when launched by ``torchrun`` (``WORLD_SIZE > 1``: process group,
DistributedDataParallel, per-rank data streams, rank 0 logs and saves). Checkpoints are plain
state dicts written atomically (:func:`sr.atomic.atomic_path`) and read back through the safe loader
(:func:`sr.checkpoint.load_checkpoint`, ``weights_only``): model, EMA, optimiser, scheduler step,
AMP scaler, the RNG states of torch / CUDA / numpy / python and the data generator — so a killed
run resumed from its last checkpoint continues bit for bit as if uninterrupted (CPU, fixed seed).

Outputs under ``out_dir``: ``ckpt/last.pt`` (full state), ``ema.safetensors`` and ``model.safetensors``
(final weights), ``method.yaml`` (the run as a method: :mod:`sr.train.run_method`),
``log.csv`` (one row per logged step and per validation; a resumed run first cuts it
back to the checkpoint's step), ``tb/`` (TensorBoard, when installed), ``config.yaml`` (the resolved
config). A resumed run also deletes the temporaries of writes the kill interrupted. The folder is claimed with
:func:`sr.ownership.claim_folder`: a user's folder is refused, and only the entries below are ever written there.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from sr.atomic import atomic_path, atomic_write_text
from sr.builders import build_diffusion, build_first_stage, build_unet, unet_output_unshuffle
from sr.checkpoint import CheckpointError, load_checkpoint, load_into
from sr.guidance import FFTLoss
from sr.ownership import claim_folder
from sr.registry import RUN_METHOD_FILE
from sr.train.config import TrainConfig
from sr.train.data import PairedPatches, validation_pairs
from sr.train.objectives.base import ObjectiveContext, build_objective
from sr.train.run_method import check_sampling, sampling_mode, write_run_method
from sr.vocab import join_flags
from sr.weights import resolve_weights

LOG_FIELDS = ["step", "kind", "key", "value"]


def lr_at(step: int, cfg) -> float:
    """Learning rate of ``step`` (0-based) for an :class:`OptimConfig`."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(step >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        total = max(1, cfg.total_steps - cfg.warmup_steps)
        frac = min(1.0, (step - cfg.warmup_steps) / total)
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac))
    raise ValueError(f"optim.schedule must be constant, cosine or step, got {cfg.schedule!r}")


def rng_state(gen: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "data": gen.get_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["data"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


#: what a training run writes in its out_dir (sr.ownership: only these are replaced or cleaned there)
#: the ownership kind of a training run folder (sr.ownership): a command that prepares one claims it as this
TRAIN_KIND = "training run"
TRAIN_ENTRIES = ("ckpt/", "tb/", "log.csv", "config.yaml", "ema.safetensors", "model.safetensors", RUN_METHOD_FILE)


class EMA:
    def __init__(self, model: torch.nn.Module, rate: float):
        self.rate = rate
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.rate).add_(v.detach(), alpha=1 - self.rate)
            else:
                self.shadow[k].copy_(v)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, device: str | None = None, overwrite: bool = False):
        check_sampling(cfg)  # before any work: the run must be sampled as its objective trains it
        self.cfg = cfg
        self.val_mode = cfg.train.val_mode or sampling_mode(cfg) or "one_step"
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None or device == "cuda" and self.world > 1:  # one GPU per process under torchrun
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
        if cfg.train.threads and self.device.type == "cpu":
            torch.set_num_threads(cfg.train.threads)
        self.out = Path(cfg.out_dir)
        self.is_main = self.rank == 0
        # a user's folder is refused before any work; only TRAIN_ENTRIES are written or cleaned in it
        self.owned = claim_folder(self.out, TRAIN_KIND, TRAIN_ENTRIES, overwrite=overwrite) if self.is_main else None
        seed = cfg.train.seed
        torch.manual_seed(seed + self.rank)
        np.random.seed(seed + self.rank)
        random.seed(seed + self.rank)
        self.gen = torch.Generator().manual_seed(seed * 1000 + self.rank)

        m = cfg.model
        self.diffusion = build_diffusion(
            m.schedule, m.input_scaling, cfg.data.scale, unet_output_unshuffle(m.unet, cfg.data.scale)
        )
        self.first_stage = build_first_stage(
            m.first_stage, m.vq, m.vq_weights, cfg.data.scale, cfg.weights_dir, cfg.random_weights
        ).to(self.device)
        self.model = build_unet(m.unet).to(self.device)
        if m.init_from:
            load_into(
                self.model,
                resolve_weights(m.init_from, cfg.weights_dir, what="model.init_from"),
                "UNetModelSwin (init_from)",
                keys=("ema", "state_dict", "params_ema", "params", "model"),
            )
        self.ddp_model = self.model
        if self.world > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        ctx = ObjectiveContext(
            model=self.ddp_model,
            raw_model=self.model,
            diffusion=self.diffusion,
            first_stage=self.first_stage,
            device=self.device,
            scale=cfg.data.scale,
            weights_dir=cfg.weights_dir,
            random_weights=cfg.random_weights,
            build_network=lambda: build_unet(m.unet),
        )
        self.objective = build_objective(cfg.objective, ctx)
        self.ema = EMA(self.model, cfg.train.ema_rate)
        o = cfg.optim
        o.total_steps = cfg.train.iterations
        self.opt = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=o.lr,
            betas=tuple(o.betas),
            weight_decay=o.weight_decay,
        )
        self.amp_dtype = None
        if self.device.type == "cuda" and cfg.train.amp != "none":
            self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.amp]
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.data = PairedPatches(cfg.data, progress=cfg.train.progress and self.is_main)
        self.val = validation_pairs(cfg.data, progress=False) if self.is_main else []
        self.val_fft = FFTLoss()
        self._lpips = None
        if resume and (self.out / "ckpt" / "last.pt").is_file():
            self.load(self.out / "ckpt" / "last.pt")
        self._tb = None
        if self.is_main:
            if self.step == 0:  # a fresh run does not append to an earlier run's log
                (self.out / "log.csv").unlink(missing_ok=True)
            else:
                self.trim_log()
            self.owned.sweep_temporaries(
                max_age_s=0
            )  # one trainer per out_dir: a temporary of ours is a killed write's
            atomic_write_text(self.out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            if cfg.train.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.out / "tb"))
                except ImportError:
                    self._tb = None

    @property
    def flags(self) -> tuple[str, ...]:
        return self.objective.flags

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.shadow,
            "optimizer": self.opt.state_dict(),
            "scheduler": {"step": self.step},
            "step": self.step,
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(self.gen),
            "flags": list(self.flags),
        }

    def save(self) -> None:
        if not self.is_main:
            return
        path = self.out / "ckpt" / "last.pt"
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def load(self, path: Path) -> None:
        state = load_checkpoint(path)
        missing = [k for k in ("model", "ema", "optimizer", "step", "rng") if k not in state]
        if missing:
            raise CheckpointError(
                f"{path} is not a training checkpoint of sr.train: it lacks {', '.join(missing)}; "
                f"delete it (or drop --resume) to start afresh"
            )
        self.model.load_state_dict(state["model"])
        self.ema.shadow = {k: v.to(self.device) for k, v in state["ema"].items()}
        self.opt.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"], self.gen)

    def export(self) -> None:
        if not self.is_main:
            return
        from safetensors.torch import save_file

        meta = {
            "name": self.cfg.name,
            "step": str(self.step),
            "config": self.cfg.source,
            "flags": join_flags(self.flags),
        }
        for fname, sd in (("ema.safetensors", self.ema.shadow), ("model.safetensors", self.model.state_dict())):
            with atomic_path(self.out / fname) as tmp:
                save_file({k: v.detach().cpu().contiguous() for k, v in sd.items()}, str(tmp), metadata=meta)
        write_run_method(self.cfg, self.out, self.step)  # the run folder becomes a method (when the config says how)

    # -- logging ----------------------------------------------------------------------------
    def trim_log(self) -> None:
        """On resume: keep the log rows up to the checkpoint's step (the rows logged after it are logged
        again by the resumed run, and a kill may have cut the last line short), so the log ends as an
        uninterrupted run's would."""
        path = self.out / "log.csv"
        if not path.is_file():
            return
        lines = path.read_text().splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines.pop()  # torn by the kill
        kept = [LOG_FIELDS] + [
            row for row in csv.reader(lines) if len(row) == 4 and row[0].isdigit() and int(row[0]) <= self.step
        ]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(kept)
        atomic_write_text(path, buf.getvalue())

    def logged_val(self, step: int) -> bool:
        """Whether log.csv already holds the validation row of ``step``."""
        path = self.out / "log.csv"
        if not path.is_file():
            return False
        with open(path, newline="") as fh:
            return any(row.get("step") == str(step) and row.get("kind") == "val" for row in csv.DictReader(fh))

    def log(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        path = self.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
            if new:
                w.writeheader()
            for k, v in row.items():
                if k not in ("step", "kind"):
                    w.writerow({"step": row["step"], "kind": row["kind"], "key": k, "value": v})
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("step", "kind"):
                    self._tb.add_scalar(f"{row['kind']}/{k}", v, row["step"])

    # -- validation -------------------------------------------------------------------------
    def sampler(self, use_ema: bool = True):
        from sr.sampler import ResShiftSampler

        net = build_unet(self.cfg.model.unet).to(self.device)
        net.load_state_dict(self.ema.shadow if use_ema else self.model.state_dict())
        net.eval()
        return ResShiftSampler(
            net,
            self.first_stage,
            self.diffusion,
            steps_mode=self.val_mode,
            chop_size=10**6,
            chop_stride=10**6,
            pad_multiple=self.cfg.model.pad_multiple,
            seed=12345,
            **self.objective.sampler_options(),
        )

    def validate(self) -> dict[str, float]:
        if not self.val:
            return {}
        sampler = self.sampler()
        scores: dict[str, list[float]] = {"psnr": [], "val_fft": []}
        guidance = getattr(self.objective, "guidance", None)
        for lr, hr in self.val:
            sr = sampler(lr.to(self.device)).clamp(0, 1).mean(dim=1, keepdim=True)
            ref = hr.to(self.device).mean(dim=1, keepdim=True)
            scores["psnr"].append(psnr(sr, ref))
            with torch.no_grad():
                scores["val_fft"].append(float(self.val_fft(sr, ref)))
                if guidance is not None:
                    for k, v in guidance.loss.per_term(sr, ref).items():
                        scores.setdefault(f"val_g_{k}", []).append(float(v))
            lp = self.lpips()
            if lp is not None:
                with torch.no_grad():
                    scores.setdefault("lpips", []).append(float(lp(sr, ref)))
        return {k: float(np.mean(v)) for k, v in scores.items()}

    def lpips(self):
        """LPIPS with the AlexNet trunk (pyiqa's weights, the benchmark's LPIPS) from sr.guidance, or None."""
        if self._lpips is None:
            from sr.errors import UserError
            from sr.guidance import build_term

            try:
                self._lpips = build_term("lpips", trunk="alex", weights_dir=self.cfg.weights_dir).to(self.device)
            except UserError as exc:  # weights missing or refused: validate with PSNR only, and say why
                if self.is_main:
                    print(f"[sr.train] validation without LPIPS: {exc}", flush=True)
                self._lpips = False
        return self._lpips or None

    # -- the loop ---------------------------------------------------------------------------
    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        lr = lr_at(self.step, cfg.optim)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        logs_acc: dict[str, float] = {}
        accum = cfg.train.grad_accum
        for micro in range(accum):
            batch = {k: v.to(self.device) for k, v in self.data.batch(self.gen).items()}
            sync = micro == accum - 1 or self.world == 1
            ctx = contextlib.nullcontext() if sync else self.ddp_model.no_sync()
            with ctx:
                with self.autocast():
                    loss, logs = self.objective(batch, self.step)
                self.scaler.scale(loss / accum).backward()
            logs["loss"] = float(loss.detach())
            for k, v in logs.items():
                logs_acc[k] = logs_acc.get(k, 0.0) + v / accum
        if cfg.optim.grad_clip:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.ema.update(self.model)
        self.step += 1
        logs_acc["lr"] = lr
        return logs_acc

    def fit(self) -> dict[str, float]:
        cfg = self.cfg.train
        bar = tqdm(
            total=cfg.iterations,
            initial=self.step,
            desc=self.cfg.name,
            disable=not (cfg.progress and self.is_main),
            dynamic_ncols=True,
        )
        t0 = time.perf_counter()
        val: dict[str, float] = {}
        # a finished run resumed: report its validation, but save and log nothing twice
        finished = self.step >= cfg.iterations and self.logged_val(self.step)
        while self.step < cfg.iterations:
            logs = self.train_step()
            bar.update(1)
            if self.step % max(1, cfg.log_every) == 0 or self.step == cfg.iterations:
                logs["sec"] = time.perf_counter() - t0
                self.log({"step": self.step, "kind": "train", **logs})
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
            if cfg.val_every and self.step % cfg.val_every == 0 and self.step != cfg.iterations:
                self.log({"step": self.step, "kind": "val", **self.validate()})
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save()
        bar.close()
        if self.is_main and finished:
            val = self.validate()
        elif self.is_main:
            self.save()
            self.export()
            val = self.validate()
            self.log({"step": self.step, "kind": "val", **val})
        if self._tb is not None:
            self._tb.close()
        return val
