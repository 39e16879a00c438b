"""A finished training run is a method: the run folder holds its weights, their sha256 and the method options
that sample the network the way its objective trained it.

A training config names how its run is sampled in a ``method`` section::

    method:
      like: difiisr              # the method YAML whose factory and sampler options the run takes
      options: {steps_mode: one_step}   # overrides (optional)
      mismatch: "..."            # optional: why a sampler other than the objective's is intended

:func:`check_sampling` refuses (ConfigError: one ``error:`` line, exit 2) a config whose method samples in another
steps mode than its objective trains (a one-step SinSR student sampled in 15 steps, a ResShift network trained at
random t sampled in one step) unless ``mismatch`` says why. At the end of training :func:`write_run_method` writes
``<run>/method.yaml``: the ``like`` method's YAML with the run's network (``model.unet``, first stage, schedule,
input scaling, padding) and weights (``ema.safetensors``, relative to the folder) and ``weights_sha256``; the method
is named after the run folder. The method registry finds such folders under ``$IRSR_RUNS_DIR`` (:mod:`sr.registry`),
so ``--methods <run name>`` evaluates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sr.atomic import atomic_write_text
from sr.errors import ConfigError
from sr.registry import RUN_METHOD_FILE, method_spec
from sr.weights import file_sha256

#: the weights file of a run that its method samples (the EMA weights, as every demo model)
RUN_WEIGHTS_FILE = "ema.safetensors"


def method_options(cfg) -> dict[str, Any]:
    """The options of the ``like`` method, overridden by the run's network and the config's ``method.options``."""
    spec = method_spec(cfg.method["like"])
    m = cfg.model
    weights = {"unet": RUN_WEIGHTS_FILE}
    if m.first_stage == "vq":
        weights["vq"] = m.vq_weights
    network = {
        "unet": m.unet,
        "first_stage": m.first_stage,
        "schedule": m.schedule,
        "input_scaling": m.input_scaling,
        "pad_multiple": m.pad_multiple,
        "weights": weights,
    }
    if m.first_stage == "vq":
        network["vq"] = m.vq
    return {**spec.options, **network, **dict(cfg.method.get("options") or {})}


def sampling_mode(cfg) -> str | None:
    """The steps mode the run is sampled with as a method (None: the config has no ``method`` section)."""
    if not cfg.method:
        return None
    return method_options(cfg).get("steps_mode", "one_step")


def check_sampling(cfg) -> None:
    """ConfigError when the method samples in a steps mode the objective does not train, unless ``mismatch``."""
    mode = sampling_mode(cfg)
    if mode is None:
        return
    from sr.train.objectives.base import OBJECTIVES

    options = {k: v for k, v in cfg.objective.items() if k != "kind"}
    trained = OBJECTIVES.get(cfg.objective["kind"]).factory.sampling_modes(options)
    reason = cfg.method.get("mismatch")
    if mode not in trained and not (isinstance(reason, str) and reason.strip()):
        base = f" (base {options.get('base', 'resshift')})" if cfg.objective["kind"] == "difiisr" else ""
        raise ConfigError(
            f"{cfg.source}: objective {cfg.objective['kind']!r}{base} trains a network sampled with steps_mode "
            f"{' or '.join(trained)}, but method (like {cfg.method['like']!r}) samples it with {mode!r}: a different "
            f"model from the one trained. Change objective or method.options.steps_mode, or say why in method.mismatch"
        )


def write_run_method(cfg, out: str | Path, step: int) -> Path | None:
    """Write ``<out>/method.yaml`` for the run's exported weights (None when the config has no ``method``)."""
    if not cfg.method:
        return None
    out = Path(out)
    spec = method_spec(cfg.method["like"])
    mismatch = cfg.method.get("mismatch")
    entry = {
        "name": out.resolve().name,  # the registry finds a run method by its folder's name
        "factory": spec.factory,
        "scale": spec.scale,
        "family": spec.family,
        "paper_name": cfg.method.get("paper_name") or f"{spec.paper_name} ({cfg.name})",
        "description": f"trained by python -m sr.train --config {cfg.source} ({step} iterations); sampled as "
        f"{cfg.method['like']} samples"
        + (f"; sampler differs from the objective on purpose: {mismatch}" if mismatch else ""),
        "options": method_options(cfg),
        "weights_sha256": {"unet": file_sha256(out / RUN_WEIGHTS_FILE)},
    }
    path = out / RUN_METHOD_FILE
    atomic_write_text(path, yaml.safe_dump(entry, sort_keys=False))
    return path
