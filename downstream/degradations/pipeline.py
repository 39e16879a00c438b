"""Names, severities and the physical order of the degradations; ``degrade`` runs one on a frame.

Every degradation is a YAML in ``configs/degradations/`` (registered through :class:`sr.registry.Registry`, the
project's one registration mechanism): ``factory`` (the operator, ``module:function``), ``stage`` (where in the
camera it happens), ``severities`` (1-5 -> the operator's keyword parameters; absent: severity-free) and
``sources``. ``sensor`` is a composite (``stage: composite``): each severity names its components and their
severities, run in the fixed physical order :data:`ORDER` (optics -> sampling -> noise and fixed-pattern noise in
counts -> AGC -> compression).

An operator is ``fn(x, rng, *, scale, bits, **params) -> x`` on float64 arrays [C, H, W] with values in [0, 1]
(counts / (2**bits - 1)); sensor effects (noise, fixed pattern) are drawn once per pixel and shared by the
channels (an infrared frame replicated to 3 channels stays gray). A single degradation that does not sample
(e.g. ``noise``) is preceded by the paper's bicubic sampling (``sr.degrade.degrade``, the one bicubic);
``blur`` and ``shading`` act on the HR frame before it. Random draws come from a generator seeded with
(seed, sample id, operator name): the same frame and seed give the same LR in any order, process or run.
The output is rounded to the input's grid (8- or 16-bit) or to 8 bits after ``agc`` / ``jpeg``.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sr.config import check_options
from sr.degrade import degrade as bicubic_degrade
from sr.errors import ConfigError
from sr.methods.interpolation import is_8bit
from sr.registry import Registry
from sr.vocab import DEGRADATION_DEFAULT

#: configs/degradations/<name>.yaml
DEGRADATIONS = Registry(
    "degradation",
    configs="degradations",
    keys={"severities", "sources", "stage", "units", "output_bits", "notes"},
    required=("stage",),
    plugin_kind="degradation",  # sr.plugins.register("degradation", name, fn, stage=..., severities=...)
)
SEVERITIES = (1, 2, 3, 4, 5)
STAGES = ("optics", "sampling", "counts", "output")
#: the physical order of the operators: a composite runs its components in this order, whatever its YAML says
ORDER = ("blur", "shading", "bicubic", "area", "noise", "stripe", "nuc", "agc", "jpeg")
#: bumped when an operator's code changes what it returns: part of every cache key of a degraded frame
CODE_VERSION = 1
SEPARATOR = "@"


@dataclass(frozen=True)
class Step:
    name: str
    stage: str
    fn: Any
    params: dict[str, Any]


@dataclass(frozen=True)
class Spec:
    """A resolved degradation: ``name``, ``severity`` (None when severity-free) and the operator steps it runs."""

    name: str
    severity: int | None
    steps: tuple[Step, ...]
    output_bits: int | None  # 8 after agc / jpeg; None: the input's bit depth

    @property
    def label(self) -> str:
        """``noise@3``, or the bare name of a severity-free degradation (the ``degradation`` column's value)."""
        return self.name if self.severity is None else f"{self.name}{SEPARATOR}{self.severity}"

    def identity(self) -> dict[str, Any]:
        """What a degraded frame depends on (besides the frame, scale and seed): part of the cache keys."""
        return {
            "name": self.name,
            "severity": self.severity,
            "steps": [[s.name, s.params] for s in self.steps],
            "output_bits": self.output_bits,
            "code": CODE_VERSION,
        }


def list_degradations() -> list[str]:
    return DEGRADATIONS.names()


def _config(name: str) -> dict[str, Any]:
    entry = DEGRADATIONS.get(name)
    data = dict(entry.metadata)
    if data.get("stage") not in (*STAGES, "composite"):
        raise ConfigError(
            f"{entry.source}: stage must be one of {', '.join(STAGES)} or composite, not {data.get('stage')!r}"
        )
    data["factory"] = entry.factory
    data["source"] = entry.source
    return data


def _severity_params(name: str, data: dict[str, Any], severity: int | None, label: str) -> dict[str, Any]:
    table = data.get("severities")
    if table is None:
        if severity is not None:
            raise ConfigError(f"degradation {label!r}: {name} has no severities; write {name}")
        return {}
    if sorted(int(k) for k in table) != list(SEVERITIES):
        raise ConfigError(f"{data['source']}: severities must be exactly {list(SEVERITIES)}")
    if severity is None:
        raise ConfigError(f"degradation {label!r}: {name} needs a severity 1-5, e.g. {name}{SEPARATOR}3")
    if severity not in SEVERITIES:
        raise ConfigError(f"degradation {label!r}: severity must be 1-5, not {severity}")
    params = {int(k): v for k, v in table.items()}[severity]
    return dict(params or {})


def _step(name: str, severity: int | None, label: str) -> Step:
    data = _config(name)
    if data["stage"] == "composite":
        raise ConfigError(f"degradation {label!r}: a composite cannot contain the composite {name!r}")
    params = _severity_params(name, data, severity, label)
    if data["factory"] is None:
        raise ConfigError(f"{data['source']}: needs a 'factory: module:function'")
    check_options(f"{data['source']} severity {severity}", data["factory"], params, skip=("x", "rng", "scale", "bits"))
    return Step(name, data["stage"], data["factory"], params)


def resolve(label: str) -> Spec:
    """``noise@3`` / ``bicubic`` -> its Spec; a ConfigError naming the problem for an unknown name or severity."""
    label = str(label).strip()
    name, sep, sev = label.partition(SEPARATOR)
    if sep and not sev.strip().isdigit():
        raise ConfigError(f"degradation {label!r}: the severity after '{SEPARATOR}' must be a number 1-5")
    severity = int(sev) if sep else None
    data = _config(name)  # UnknownNameError with "did you mean" for an unknown name
    params = _severity_params(name, data, severity, label)
    if data["stage"] == "composite":
        unknown = [c for c in params if c not in ORDER]
        if unknown:
            raise ConfigError(f"{data['source']}: unknown component {unknown[0]!r}; components: {', '.join(ORDER)}")
        steps = [_step(c, None if params[c] is None else int(params[c]), label) for c in ORDER if c in params]
    else:
        steps = [_step(name, severity, label)]
    if not any(s.stage == "sampling" for s in steps):  # the paper's bicubic samples what the optics made
        at = sum(1 for s in steps if s.stage == "optics")
        steps.insert(at, _step(DEGRADATION_DEFAULT, None, label))
    stages = [STAGES.index(s.stage) for s in steps]
    if stages != sorted(stages) or sum(s.stage == "sampling" for s in steps) != 1:
        raise ConfigError(f"degradation {label!r}: steps out of the physical order or not exactly one sampling")
    bits = [_config(s.name).get("output_bits") for s in steps]
    output_bits = min((int(b) for b in bits if b is not None), default=None)
    return Spec(name, severity, tuple(steps), output_bits)


def parse_list(text: str) -> list[str]:
    """``bicubic,noise@3,stripe@5`` -> the canonical labels, each checked (ConfigError on the first bad one)."""
    labels = [resolve(part).label for part in str(text).split(",") if part.strip()]
    if not labels:
        raise ConfigError("no degradation given")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"degradation listed twice in {text!r}")
    return labels


def _rng(seed: int, sample_id: str, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) % 2**32, zlib.crc32(str(sample_id).encode()), zlib.crc32(name.encode())])


def degrade(
    hr: torch.Tensor,
    degradation: str | Spec = DEGRADATION_DEFAULT,
    *,
    scale: int = 4,
    seed: int = 0,
    sample_id: str = "",
    bits: int | None = None,
) -> torch.Tensor:
    """LR [C, h, w] (float32 in [0, 1]) of the modcropped HR frame [C, H, W] under ``degradation``.

    ``bits``: the bit depth of the frame's grid (8 or 16; default: 8 when every value is a multiple of 1/255).
    ``bicubic`` is exactly ``sr.degrade.degrade`` (the paper's LR, bit for bit)."""
    spec = degradation if isinstance(degradation, Spec) else resolve(degradation)
    if spec.name == DEGRADATION_DEFAULT:
        return bicubic_degrade(hr, scale)
    if bits is None:
        bits = 8 if is_8bit(hr) else 16
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, not {bits}")
    x = hr.detach().cpu().to(torch.float64).numpy()
    for step in spec.steps:
        x = step.fn(x, _rng(seed, sample_id, step.name), scale=scale, bits=bits, **step.params)
    levels = 2 ** (spec.output_bits or bits) - 1
    x = np.round(np.clip(x, 0.0, 1.0) * levels) / levels
    return torch.from_numpy(x.astype(np.float32))


def output_bits(degradation: str | Spec, bits: int) -> int:
    """The bit depth of ``degradation``'s output for a ``bits``-bit input (8 after agc / jpeg)."""
    spec = degradation if isinstance(degradation, Spec) else resolve(degradation)
    return spec.output_bits or bits


def identity(degradation: str, seed: int) -> str | dict[str, Any]:
    """A data set's degradation in its cache identity: the bare name for bicubic (the keys runs had before the
    degradation axis), else the operator parameters and the seed."""
    spec = resolve(degradation)
    return spec.label if spec.name == DEGRADATION_DEFAULT else {**spec.identity(), "seed": int(seed)}


def degraded(dataset, degradation: str, seed: int = 0):
    """A copy of ``dataset`` whose LR frames are made by ``degradation`` with ``seed`` (the dataset itself when
    that is its own degradation)."""
    label = resolve(degradation).label
    if label == dataset.degradation and (label == DEGRADATION_DEFAULT or dataset.degradation_seed == seed):
        return dataset
    if dataset.degradation not in (DEGRADATION_DEFAULT, label):  # its YAML says how its LR is made: kept
        raise ConfigError(
            f"data set {dataset.name!r} is defined with degradation {dataset.degradation!r}; run it with "
            f"--degradations {dataset.degradation} (or remove 'degradation:' from its YAML to use the run's axis)"
        )
    out = copy.copy(dataset)
    out.degradation, out.degradation_seed = label, int(seed)
    return out
