"""Where the project's YAML configs live and how they are read."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml

from sr.errors import ConfigError, UnknownNameError

CONFIG_DIR = Path(os.environ.get("IRSR_CONFIG_DIR", Path(__file__).resolve().parents[1] / "configs"))


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a syntax error is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def config_names(subdir: str) -> list[str]:
    """Names (file stems) of the YAML files in ``configs/<subdir>``."""
    return sorted(p.stem for p in (CONFIG_DIR / subdir).glob("*.yaml"))


def find_config(subdir: str, name: str, kind: str) -> Path:
    """``configs/<subdir>/<name>.yaml``, or ``name`` itself when it is the path of a ``.yaml``/``.yml`` file;
    an unknown name is an UnknownNameError of ``kind`` with "did you mean" hints."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{kind} file not found: {path}")
        return path
    path = CONFIG_DIR / subdir / f"{name}.yaml"
    if not path.is_file():
        raise UnknownNameError(kind, name, config_names(subdir))
    return path


def import_factory(ref: str, what: str) -> Any:
    """The object a ``module:attribute`` reference names; a ConfigError starting with ``what`` otherwise."""
    module_name, _, attr = str(ref).partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {ref!r} is not of the form module:attribute")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{what} {ref!r} cannot be imported: {exc}") from None
