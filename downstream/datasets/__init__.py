"""Data sets: kinds are Python classes registered with ``@register_kind``; instances are YAMLs.

``load_dataset("m3fd_set5")`` reads ``configs/datasets/m3fd_set5.yaml`` (``kind`` + options);
``load_dataset("folder:/path/to/frames")`` builds a folder data set ad hoc; ``load_dataset("path/to/x.yaml")``
reads a data-set YAML anywhere (e.g. the ``dataset.yaml`` a ``prepare`` command writes).
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from downstream.datasets.base import (
    KINDS,
    Dataset,
    data_dir,
    register_kind,
    resolve_root,
)
from sr.config import CONFIG_DIR, config_names, read_yaml
from sr.errors import ConfigError, UnknownNameError, check_keys

_KIND_MODULES = ("folder", "m3fd", "fmb", "synthir", "prepared")


def _load_kinds() -> None:
    for module in _KIND_MODULES:
        importlib.import_module(f"downstream.datasets.{module}")


def list_datasets() -> list[str]:
    return config_names("datasets")


def dataset_config(name: str) -> dict[str, Any]:
    if ":" in name:
        kind, root = name.split(":", 1)
        return {"kind": kind, "root": root}
    path = Path(name).expanduser() if name.endswith((".yaml", ".yml")) else CONFIG_DIR / "datasets" / f"{name}.yaml"
    if not path.is_file():
        raise UnknownNameError("data set", name, list_datasets())
    cfg = read_yaml(path)
    if "kind" not in cfg:
        raise ConfigError(f"{path}: missing required key 'kind'")
    return cfg


def dataset_label(name: str) -> str:
    """The short name a data set's rows carry: a data-set YAML path gives its ``name:`` key (what ``prepare`` writes:
    the output folder's name), else its folder's name for a ``dataset.yaml``, else its file stem; other names are
    used as they are."""
    if not name.endswith((".yaml", ".yml")):
        return name
    path = Path(name).expanduser()
    label = dataset_config(name).get("name")
    return str(label) if label else (path.parent.name if path.stem == "dataset" else path.stem)


def load_dataset(name: str, **overrides: Any) -> Dataset:
    """Build data set ``name`` (a YAML in configs/datasets/ or ``kind:root``) with option overrides."""
    _load_kinds()
    cfg = {**dataset_config(name), **overrides}
    kind = cfg.pop("kind")
    cfg.pop("description", None)
    cfg.pop("name", None)  # a YAML's own display name (prepared data sets); the rows use ``name`` as given
    if kind not in KINDS:
        raise UnknownNameError("data-set kind", kind, KINDS)
    cls = KINDS[kind]
    accepted = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        accepted |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"self", "name"}
    check_keys(f"data set {name!r} ({kind})", cfg, accepted)
    dataset = cls(name=name, **cfg)
    dataset.options = cfg
    dataset.warn_if_smaller()
    return dataset


__all__ = [
    "KINDS",
    "Dataset",
    "data_dir",
    "dataset_config",
    "dataset_label",
    "list_datasets",
    "load_dataset",
    "register_kind",
    "resolve_root",
]
