"""Registry of SR methods: one YAML per method in ``configs/methods/``.

A method YAML names a factory (``module:Class``, a subclass of :class:`sr.base.SRMethod`), its scale
and default options::

    name: bicubic                      # must equal the file stem
    factory: sr.methods.interpolation:PILResize
    scale: 4
    paper_name: Bicubic                # how the paper's tables call it (optional)
    description: ...
    options: {resample: bicubic}

Adding a method = one Python file with the class + one YAML. ``load_method(name, **opts)``
overrides the YAML options with ``opts``; an option the factory does not accept is a ConfigError.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from sr.base import SRMethod
from sr.config import CONFIG_DIR, config_names, read_yaml
from sr.errors import ConfigError, UnknownNameError, check_keys

_SPEC_KEYS = {"name", "factory", "scale", "paper_name", "description", "options", "family"}
COMMON_OPTIONS = ("device", "weights_dir", "random_weights")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    factory: str
    scale: int
    paper_name: str
    description: str = ""
    family: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def list_methods() -> list[str]:
    """Names of every registered method."""
    return config_names("methods")


def method_spec(name: str) -> MethodSpec:
    path = CONFIG_DIR / "methods" / f"{name}.yaml"
    if not path.is_file():
        raise UnknownNameError("method", name, list_methods())
    data = read_yaml(path)
    check_keys(str(path), data, _SPEC_KEYS)
    for key in ("factory", "scale"):
        if key not in data:
            raise ConfigError(f"{path}: missing required key {key!r}")
    if data.get("name", name) != name:
        raise ConfigError(f"{path}: 'name' is {data['name']!r} but the file is {name}.yaml")
    return MethodSpec(name=name, factory=data["factory"], scale=int(data["scale"]),
                      paper_name=data.get("paper_name", name), description=data.get("description", ""),
                      family=data.get("family", ""), options=dict(data.get("options") or {}))


def _import_factory(ref: str) -> type[SRMethod]:
    module_name, _, attr = ref.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"method factory {ref!r} cannot be imported: {exc}") from None
    if not (inspect.isclass(factory) and issubclass(factory, SRMethod)):
        raise ConfigError(f"method factory {ref!r} is not an SRMethod subclass")
    return factory


def load_method(name: str, **opts: Any) -> SRMethod:
    """Build method ``name`` with its YAML options overridden by ``opts``."""
    spec = method_spec(name)
    factory = _import_factory(spec.factory)
    options = {**spec.options, **opts}
    scale = options.pop("scale", spec.scale)
    if scale != spec.scale:
        raise ConfigError(f"method {name!r} is a x{spec.scale} method; scale {scale} was asked for")
    accepted = set()
    for klass in factory.__mro__:
        if klass is object:
            continue
        accepted |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"self", "name", "scale"}
    check_keys(f"options of method {name!r}", options, accepted)
    method = factory(name=name, scale=spec.scale, **options)
    method.options = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
    return method
