"""Suites: YAML files in ``configs/suites/`` naming data sets, methods, metrics and task configs.

::

    description: ...
    datasets: [synthir_demo]
    methods: all                 # or a list of method names
    metrics: [psnr, ssim, lpips, niqe, clipiqa, musiq]
    tasks: {detection: detection_demo, segmentation: segmentation_demo}   # task -> configs/tasks/<name>.yaml
    degradations: [bicubic, noise@3]   # optional: the degradation axis (configs/degradations/; default: bicubic)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sr.config import check_options
from sr.errors import ConfigError
from sr.registry import Registry
from sr.vocab import DEGRADATION_DEFAULT

DEFAULT_SUITE = "demo"
#: suite YAMLs in configs/suites/ (``base:`` inherits from another suite)
SUITES = Registry("suite", configs="suites", keys={"datasets", "methods", "metrics", "tasks", "degradations"})


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...] | str
    metrics: tuple[str, ...]
    tasks: dict[str, str] = field(default_factory=dict)
    description: str = ""
    degradations: tuple[str, ...] = (DEGRADATION_DEFAULT,)


def list_suites() -> list[str]:
    return SUITES.names()


def load_suite(name: str) -> Suite:
    """Suite ``name`` (``configs/suites/<name>.yaml``, or the path of a suite YAML: its stem names it)."""
    path = SUITES.path(name)
    name = path.stem
    data = SUITES.config(str(path))
    check_options(str(path), Suite, data, skip=("name",))
    if not data.get("datasets"):
        raise ConfigError(f"{path}: 'datasets' must list at least one data set")
    methods = data.get("methods", "all")
    return Suite(
        name=name,
        datasets=tuple(data["datasets"]),
        methods=methods if methods == "all" else tuple(methods),
        metrics=tuple(data.get("metrics") or ()),
        tasks=dict(data.get("tasks") or {}),
        description=data.get("description", ""),
        degradations=tuple(_degradations(path, data.get("degradations"))),
    )


def _degradations(path, value) -> list[str]:
    """The suite's ``degradations:`` (a list or a comma string of ``name`` / ``name@severity``), each checked."""
    from downstream.degradations import parse_list

    if value is None:
        return [DEGRADATION_DEFAULT]
    text = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    try:
        return parse_list(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: degradations: {exc}") from None
