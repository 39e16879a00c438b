"""Where the project's YAML configs live, how they are read (``base:`` inheritance) and how options are checked."""

from __future__ import annotations

import collections.abc
import importlib
import importlib.util
import inspect
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from sr.errors import ConfigError, UnknownNameError, check_keys
from sr.safeparse import read_yaml_file
from sr.vocab import ENV_CONFIG_DIR

#: what a config name may be: a file stem in its folder (no path separators, no leading dot)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
#: the folder holding the project's packages (sr/, downstream/, benchmarks/, reports/): the source checkout or, once
#: installed, site-packages; paths of files shipped with the project (the demo weights) are relative to it
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_PACKAGE = "irsr_configs"  # configs/ as installed package data (pyproject.toml maps it)


def _config_dir() -> Path:
    """``$IRSR_CONFIG_DIR``, else configs/ of a source checkout, else the installed package data."""
    if os.environ.get(ENV_CONFIG_DIR):
        return Path(os.environ[ENV_CONFIG_DIR])
    checkout = PROJECT_ROOT / "configs"
    if (checkout / "suites").is_dir():
        return checkout
    spec = importlib.util.find_spec(CONFIG_PACKAGE)  # a namespace package: YAML files only, no __init__.py
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"no configs: neither {checkout} nor an installed {CONFIG_PACKAGE} package; set {ENV_CONFIG_DIR}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


CONFIG_DIR = _config_dir()


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping (with the bounds of :mod:`sr.safeparse`); a missing file, a syntax error or a breached
    bound is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = read_yaml_file(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def config_names(subdir: str) -> list[str]:
    """Names (file stems) of the YAML files in ``configs/<subdir>``."""
    return sorted(p.stem for p in (CONFIG_DIR / subdir).glob("*.yaml"))


def find_config(subdir: str, name: str, kind: str) -> Path:
    """``configs/<subdir>/<name>.yaml``, or ``name`` itself when it is the path of an existing ``.yaml`` /
    ``.yml`` file. A name resolves inside the config folder only (``../x`` or ``/tmp/x`` is not a name); an
    unknown name is an UnknownNameError of ``kind`` with "did you mean" hints."""
    path = Path(str(name)).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if path.is_file():
            return path
        if len(path.parts) > 1:
            raise ConfigError(f"{kind} file not found: {path}")
        name = path.stem  # a name written with its suffix
    if not _NAME.fullmatch(str(name)):
        raise UnknownNameError(kind, str(name), config_names(subdir))
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


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings are merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config with ``base: other.yaml`` resolved: the base (a path relative to this file's folder) is read
    the same way and this file's keys are deep-merged over it; a loop in the chain is a ConfigError."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base = {base!r} must be the path of another YAML")
    base_path = path.parent / (base if base.endswith((".yaml", ".yml")) else f"{base}.yaml")
    if not base_path.is_file():
        raise ConfigError(f"{path}: base {base!r} not found (looked for {base_path})")
    return merge(read_config(base_path, _seen + (path,)), data)


# ----- option checks shared by every registry: unknown keys (did you mean) and value types -----------------
def matches_type(value: Any, tp: Any) -> bool:
    """Whether ``value`` (as YAML gives it) fits the annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or isinstance(tp, (str, typing.TypeVar)):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type) and issubclass(tp, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    if origin in (list, tuple, collections.abc.Sequence) and not isinstance(value, (list, tuple)):
        return False
    if origin in (list, collections.abc.Sequence) or (origin is tuple and args[-1:] == (Ellipsis,)):
        return all(matches_type(v, args[0]) for v in value) if args else True
    if origin is tuple:
        return len(value) == len(args) and all(matches_type(v, a) for v, a in zip(value, args, strict=True))
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in args
    return isinstance(value, tp) if isinstance(tp, type) else True


def type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def accepted_options(factory: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword options ``factory`` (a class: its ``__init__`` along the MRO; or a function) accepts -> their type
    annotations (``Any`` where there is none or it cannot be resolved)."""
    functions = (
        [k.__init__ for k in factory.__mro__ if k is not object and "__init__" in vars(k)]
        if isinstance(factory, type)
        else [factory]
    )
    options: dict[str, Any] = {}
    for function in functions:
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # a name only imported for type checkers: no type check for this function
            hints = {}
        for p in inspect.signature(function).parameters.values():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", *skip):
                options.setdefault(p.name, hints.get(p.name, Any))
    return options


def check_values(where: str, values: dict[str, Any], schema: dict[str, Any], *, typed: bool = True) -> None:
    """A ConfigError naming ``where`` for a key of ``values`` that ``schema`` (key -> type annotation) lacks (with
    "did you mean") or, when ``typed``, a value of the wrong type."""
    check_keys(where, values, schema)
    if typed:
        for key, value in values.items():
            if not matches_type(value, schema[key]):
                raise ConfigError(f"{where}: {key} = {value!r} has the wrong type (expected {type_name(schema[key])})")


def schema_of(defaults: dict[str, Any]) -> dict[str, Any]:
    """A schema for :func:`check_values` from default values (a None default accepts anything)."""
    return {k: Any if v is None else type(v) for k, v in defaults.items()}


def check_options(
    where: str, factory: Any, options: dict[str, Any], *, skip: tuple[str, ...] = (), typed: bool = True
) -> None:
    """:func:`check_values` against the options ``factory`` takes (:func:`accepted_options`)."""
    check_values(where, options, accepted_options(factory, skip), typed=typed)
