"""The one way to plug something in: ``register(kind, name, obj, **metadata)``, from this project or any package.

Every kind of plug-in has one :class:`~sr.registry.Registry`, which names its kind here when it is created
(``Registry(..., plugin_kind="metric")``); :data:`KINDS` lists them all. ``register`` adds an entry to the registry of
its kind (or holds it until that registry exists, so a plug-in module may be imported before the project's
module that owns the kind). The project's own plug-ins are registered the same way (decorators, one YAML file of
entries, config folders); docs/extending.md has a recipe per kind.

Packages outside the project plug in through the entry-point group :data:`GROUP`: in their pyproject.toml ::

    [project.entry-points."irsr.plugins"]
    mine = "my_package.irsr_plugins"         # a module whose import calls register(...)

Entry points are loaded the first time any registry is used (:func:`load_entry_points`), so ``irsr ls``,
``irsr run --methods mine`` and ``sr.load_method("mine")`` see them without any import by the user. An entry point
that fails to load is a ConfigError naming it and its distribution.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from sr.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from sr.registry import Registry

#: the entry-point group outside packages declare their plug-in modules in
GROUP = "irsr.plugins"
#: every plug-in kind -> what an object of it is (docs/extending.md has the recipe of each)
KINDS = {
    "method": "an SRMethod subclass (metadata: scale, paper_name, family, description, options)",
    "dataset-kind": "a Dataset subclass (downstream.datasets.base)",
    "metric": "a function [B,C,H,W] in [0,1] (, reference) -> [B] (metadata: reference, higher_better, range, ...)",
    "task": "a Task subclass (downstream.tasks; metadata: options, description)",
    "objective": "an Objective subclass (sr.train.objectives.base)",
    "guidance-term": "an nn.Module loss class (sr.guidance.terms; metadata: group)",
    "degradation": "an operator fn(x, rng, *, scale, bits, **params) (downstream.degradations; metadata: stage, ...)",
}

_registries: dict[str, Registry] = {}
_pending: dict[str, list[tuple[str, Any, dict[str, Any]]]] = {}
_loaded: set[str] = set()  # entry points already imported ("distribution:name")
_scanned: list[bool] = []  # non-empty once the installed distributions were scanned


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownNameError("plug-in kind", kind, KINDS)


def register(kind: str, name: str, obj: Any = None, **metadata: Any) -> Any:
    """Register ``obj`` as the ``kind`` plug-in ``name`` with ``metadata``; without ``obj``, a decorator."""
    _check_kind(kind)
    if obj is None:
        return lambda target: register(kind, name, target, **metadata)
    if kind in _registries:
        _registries[kind].add(name, obj, **metadata)
    else:
        _pending.setdefault(kind, []).append((name, obj, metadata))
    return obj


def attach(kind: str, registry: Registry) -> None:
    """Called by a Registry created for ``kind``: it receives what was registered for the kind before it existed."""
    _check_kind(kind)
    if kind in _registries and _registries[kind] is not registry:
        raise ConfigError(f"two registries claim the plug-in kind {kind!r}")
    _registries[kind] = registry
    for name, obj, meta in _pending.pop(kind, []):
        registry.add(name, obj, **meta)


def load_entry_points(*, rescan: bool = False) -> list[str]:
    """Import every entry point of :data:`GROUP` not imported yet (a module, or a callable that is then called);
    returns the new ones as ``distribution:name``. The installed distributions are scanned once per process
    (about 45 ms), again only with ``rescan`` (after installing a plug-in package into a running process)."""
    if _scanned and not rescan:
        return []
    _scanned.append(True)
    new = []
    for entry in metadata.entry_points(group=GROUP):
        dist = entry.dist.name if entry.dist is not None else "?"
        key = f"{dist}:{entry.name}"
        if key in _loaded:
            continue
        _loaded.add(key)
        try:
            target = entry.load()
            if callable(target):
                target()
        except Exception as exc:  # whatever the plug-in raised: one line naming it (--debug shows the traceback)
            where = f"plug-in entry point {entry.name!r} = {entry.value!r} of {dist}"
            raise ConfigError(f"{where} failed to load: {exc}") from exc
        new.append(key)
    return new
