"""Where the project's YAML configs live and how they are read."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from sr.errors import ConfigError

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
