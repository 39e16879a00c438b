"""Data sets: kinds are Python classes registered with ``@register_kind``; instances are YAMLs.

``load_dataset("m3fd_set5")`` reads ``configs/datasets/m3fd_set5.yaml`` (``kind`` + options, ``base:`` to
inherit from another); ``load_dataset("folder:/path/to/frames?limit=20")`` builds a folder data set ad hoc
(options as a query); ``load_dataset("path/to/x.yaml")`` reads a data-set YAML anywhere (e.g. the
``dataset.yaml`` a ``prepare`` command writes). Kinds live in the modules of this package
(:data:`DATASET_KINDS` imports them all).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from downstream.datasets.base import DATASET_KINDS, Dataset, data_dir, register_kind, resolve_root
from downstream.errors import DataError
from sr.errors import ConfigError
from sr.registry import Registry

#: data-set YAMLs in configs/datasets/: ``kind`` plus that kind's options as top-level keys
DATASETS = Registry("data set", configs="datasets", keys=None, required=("kind",))


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_config(name: str) -> dict[str, Any]:
    """The options of data set ``name``. ``kind:root?key=value&key=value`` builds one ad hoc, each value read as
    YAML (``folder:/data/frames?limit=20&channels=1&voc_skip=[DontCare]``). In a YAML, a ``root`` of ``.`` or
    starting with ``./`` / ``../`` is relative to the YAML's own folder (what ``prepare`` writes, so a prepared
    folder can be moved); other relative roots are under the data directory (``resolve_root``)."""
    if ":" in name and not name.endswith((".yaml", ".yml")):
        from urllib.parse import parse_qsl

        from sr.safeparse import load_yaml

        kind, rest = name.split(":", 1)
        DATASET_KINDS.get(kind)  # an unknown kind: UnknownNameError with hints
        root, _, query = rest.partition("?")
        if not root:
            raise ConfigError(f"data set {name!r}: KIND:ROOT needs a folder after the colon")
        options = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError as exc:
            raise ConfigError(f"data set {name!r}: options after '?' must be key=value&key=value ({exc})") from None
        for key, value in pairs:
            try:
                options[key] = load_yaml(value, f"data set {name!r} option {key}")
            except ConfigError:
                options[key] = value
        return {"kind": kind, "root": root, **options}
    cfg = DATASETS.config(name)
    root = cfg.get("root")
    if isinstance(root, str) and (root in (".", "..") or root.startswith(("./", "../"))):
        cfg["root"] = os.path.normpath(DATASETS.path(name).parent.absolute() / root)
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
    """Build data set ``name`` (a YAML in configs/datasets/, a YAML path or ``kind:root``) with option overrides."""
    cfg = dataset_config(name)
    kind = cfg.pop("kind")
    cfg.pop("description", None)
    cfg.pop("name", None)  # a YAML's own display name (prepared data sets); the rows use ``name`` as given
    options = {k: v for k, v in cfg.items() if k not in overrides}
    try:
        dataset = DATASET_KINDS.build(kind, options, fixed={"name": name}, untyped=overrides)
    except OSError as exc:  # an unreadable root or split file: name it
        raise DataError(
            f"data set {name!r}: cannot read {exc.filename or options.get('root')}: {exc.strerror or exc}"
        ) from None
    dataset.options = {**options, **overrides}
    dataset.warn_if_smaller()
    return dataset


__all__ = [
    "DATASETS",
    "DATASET_KINDS",
    "Dataset",
    "data_dir",
    "dataset_config",
    "dataset_label",
    "list_datasets",
    "load_dataset",
    "register_kind",
    "resolve_root",
]
