"""One registry for everything that plugs in: methods, data-set kinds, tasks, objectives, guidance terms, metrics.

A :class:`Registry` maps a name to a factory (a class or function), the schema of its options (the factory's
keyword parameters and their annotations) and free metadata. Entries come from two places:

* Python: :func:`sr.plugins.register` (``register(kind, "name", obj, **metadata)`` or its decorator form), the one
  registration of every plug-in kind, from this project or from another package through the entry-point group
  ``irsr.plugins`` (loaded on first use); a registry created with ``plugin_kind`` receives that kind's entries.
  ``locations`` names the project's packages whose modules are imported on first use so that their registrations
  have run (no hand-kept list of modules), and ``populate(registry)`` adds entries from one data file of many
  entries (configs/metrics.yaml);
* YAML: with ``configs="methods"`` every ``configs/methods/<name>.yaml`` (or an explicit ``.yaml`` path) is an
  entry: ``factory: module:attribute`` plus metadata and ``options``; ``base: other.yaml`` inherits.

Every kind is checked the same way (:func:`sr.config.check_options`): an unknown option is a ConfigError with
"did you mean", a value of the wrong type too; an unknown name is an UnknownNameError with "did you mean".

Methods (this module's :data:`METHODS`): a method YAML is ::

    name: bicubic                      # must equal the file stem
    factory: sr.methods.interpolation:PILResize
    scale: 4
    paper_name: Bicubic                # how the paper's tables call it (optional)
    description: ...
    options: {resample: bicubic}

Adding a method = one Python file with the class + one YAML (or, from another package, the class registered with
``sr.plugins.register("method", name, cls, scale=4, ...)``; docs/extending.md). ``load_method(name, **opts)``
overrides the YAML options with ``opts``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr import plugins
from sr.base import SRMethod
from sr.config import check_options, config_names, find_config, import_factory, read_config
from sr.errors import ConfigError, UnknownNameError, check_keys
from sr.vocab import ENV_RUNS_DIR, METHOD_OUTPUTS_PREFIX


@dataclass(frozen=True)
class Entry:
    """One registered name: its factory and metadata (for YAML entries: the YAML's keys besides ``factory``)."""

    name: str
    factory: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the YAML it came from, or the factory's module


class Registry:
    """Name -> factory, option schema and metadata (see the module doc)."""

    def __init__(
        self,
        kind: str,
        *,
        locations: Iterable[str] = (),
        configs: str | None = None,
        keys: Iterable[str] | None = (),
        required: Iterable[str] = (),
        populate: Callable[[Registry], None] | None = None,
        name_attr: str | None = None,
        plugin_kind: str | None = None,
    ):
        self.kind = kind  # what a name is, in messages ("method", "guidance term", ...)
        self.locations = tuple(locations)  # packages whose modules register entries
        self.populate = populate  # adds entries on first use
        self.name_attr = name_attr  # a registered class learns its name in this attribute (e.g. "kind")
        self.configs = configs  # configs/<configs>/*.yaml are entries
        # allowed top-level keys of an entry's YAML (None: any, e.g. data sets whose options are top-level keys)
        self.keys = None if keys is None else {"factory", "description", *keys, *required}
        self.required = tuple(required)
        self._entries: dict[str, Entry] = {}
        self._imported = False
        if plugin_kind is not None:  # sr.plugins.register(plugin_kind, ...) adds entries here, from any package
            plugins.attach(plugin_kind, self)

    # -- Python entries (added through sr.plugins.register) -------------------------------------------------
    def add(self, name: str, factory: Any, **metadata: Any) -> None:
        if self.configs and name in config_names(self.configs):
            raise ConfigError(
                f"{self.kind} {name!r} is registered by {getattr(factory, '__module__', factory)} and "
                f"is also {find_config(self.configs, name, self.kind)}; rename one"
            )
        if name in self._entries and self._entries[name].factory is not factory:
            raise ConfigError(
                f"{self.kind} {name!r} is registered twice ({self._entries[name].source} and "
                f"{getattr(factory, '__module__', factory)})"
            )
        if self.name_attr:
            setattr(factory, self.name_attr, name)
        self._entries[name] = Entry(name, factory, dict(metadata), getattr(factory, "__module__", ""))

    def _import_locations(self) -> None:
        if self._imported:
            return
        self._imported = True
        if self.populate is not None:
            self.populate(self)
        for package in self.locations:
            module = importlib.import_module(package)
            for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package}.{info.name}")
        plugins.load_entry_points()  # outside packages' plug-ins (entry-point group irsr.plugins)

    # -- lookup --------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every registered name (YAML entries by file stem)."""
        self._import_locations()
        return sorted(set(self._entries) | set(config_names(self.configs) if self.configs else ()))

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def path(self, name: str) -> Path:
        """The YAML of entry ``name`` (a name in configs/<configs>/ or a .yaml path)."""
        return find_config(self.configs, name, self.kind)

    def python_entry(self, name: str) -> Entry | None:
        """The entry ``name`` registered from Python (a decorator, ``sr.plugins.register``), None for YAML ones."""
        self._import_locations()
        return self._entries.get(name)

    def where(self, name: str) -> str:
        """Where entry ``name`` is defined, for messages: its YAML, or the module that registered it."""
        entry = self.python_entry(name)
        return f"{self.kind} {name!r} of {entry.source}" if entry else str(self.path(name))

    def config(self, name: str) -> dict[str, Any]:
        """The YAML of entry ``name`` with ``base:`` resolved and its keys checked (a Python entry: its metadata)."""
        entry = self.python_entry(name)
        if entry is not None:
            if self.keys is not None:
                check_keys(self.where(name), entry.metadata, self.keys)
            return dict(entry.metadata)
        path = self.path(name)
        data = read_config(path)
        if self.keys is not None:
            check_keys(str(path), data, self.keys)
        for key in self.required:
            if key not in data:
                raise ConfigError(f"{path}: missing required key {key!r}")
        return data

    def get(self, name: str) -> Entry:
        """The entry ``name``; an UnknownNameError with "did you mean" when there is none."""
        self._import_locations()
        if name in self._entries:
            return self._entries[name]
        if not self.configs:
            raise UnknownNameError(self.kind, name, self._entries)
        data = self.config(name)
        path = self.path(name)
        factory = import_factory(data["factory"], f"{path}: {self.kind} factory") if "factory" in data else None
        return Entry(name, factory, {k: v for k, v in data.items() if k != "factory"}, str(path))

    def build(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        fixed: dict[str, Any] | None = None,
        untyped: dict[str, Any] | None = None,
    ) -> Any:
        """``factory(**fixed, **options, **untyped)`` of entry ``name``: ``options`` (from a config) are checked for
        unknown keys and types, ``untyped`` (from code: device, paths) for unknown keys only; ``fixed`` not at all."""
        options, untyped, fixed = dict(options or {}), dict(untyped or {}), dict(fixed or {})
        entry = self.check(name, options, skip=tuple(fixed))
        check_options(f"options of {self.kind} {name!r}", entry.factory, untyped, skip=tuple(fixed), typed=False)
        return entry.factory(**fixed, **options, **untyped)

    def check(self, name: str, options: dict[str, Any] | None = None, *, skip: tuple[str, ...] = ()) -> Entry:
        """Entry ``name`` after checking ``options`` (from a config) for unknown keys and types, without building
        anything (``irsr validate``); ``skip``: parameters the caller fills itself."""
        entry = self.get(name)
        check_options(f"options of {self.kind} {name!r}", entry.factory, dict(options or {}), skip=skip)
        return entry


# ----------------------------------------------------------------------------------------------- SR methods
#: the file that makes a finished training run folder a method (written by sr.train.run_method)
RUN_METHOD_FILE = "method.yaml"


def runs_dirs() -> list[Path]:
    """Folders whose sub-folders holding a ``method.yaml`` are methods: ``$IRSR_RUNS_DIR`` (os.pathsep-separated)."""
    return [Path(p).expanduser() for p in os.environ.get(ENV_RUNS_DIR, "").split(os.pathsep) if p]


def run_method_file(name: str) -> Path | None:
    """``<runs dir>/<name>/method.yaml`` of the first runs directory that has it (None when none has)."""
    if not name or "/" in name or name.startswith("."):
        return None
    for root in runs_dirs():
        path = root / name / RUN_METHOD_FILE
        if path.is_file():
            return path
    return None


class MethodRegistry(Registry):
    """Method YAMLs of configs/methods/ plus the finished training runs under :func:`runs_dirs` (a config name
    wins over a run of the same name)."""

    def names(self) -> list[str]:
        runs = {p.parent.name for root in runs_dirs() for p in root.glob(f"*/{RUN_METHOD_FILE}")}
        return sorted(set(super().names()) | runs)

    def path(self, name: str) -> Path:
        try:
            return super().path(name)
        except UnknownNameError:
            found = run_method_file(str(name))
            if found is None:
                raise UnknownNameError(self.kind, str(name), self.names()) from None
            return found


METHODS = MethodRegistry(
    "method",
    configs="methods",
    keys={"name", "paper_name", "options", "family", "scale", "weights_sha256"},
    required=("factory", "scale"),
    plugin_kind="method",
)
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
    return METHODS.names()


def method_spec(name: str) -> MethodSpec:
    """Method ``name`` (a name in configs/methods/ or the path of a method YAML, named by its stem) as its YAML says;
    a method registered from Python (``sr.plugins.register("method", ...)``) as its metadata says."""
    entry = METHODS.python_entry(name)
    if entry is not None:
        data = METHODS.config(name)
        if "scale" not in data:
            raise ConfigError(f"{METHODS.where(name)}: register it with scale=N (its upscaling factor)")
        return MethodSpec(
            name=name,
            factory=f"{entry.factory.__module__}:{entry.factory.__qualname__}",
            scale=int(data["scale"]),
            paper_name=data.get("paper_name", name),
            description=data.get("description", ""),
            family=data.get("family", ""),
            options=dict(data.get("options") or {}),
        )
    data = METHODS.config(name)
    path = METHODS.path(name)
    stem = path.parent.name if path.name == RUN_METHOD_FILE else path.stem  # a run method: its folder's name
    if data.get("name", stem) != stem:
        raise ConfigError(f"{path}: 'name' is {data['name']!r} but the file is {stem}.yaml")
    options = dict(data.get("options") or {})
    if path.name == RUN_METHOD_FILE:
        options = _run_weights(path, data, options)
    return MethodSpec(
        name=stem,
        factory=data["factory"],
        scale=int(data["scale"]),
        paper_name=data.get("paper_name", stem),
        description=data.get("description", ""),
        family=data.get("family", ""),
        options=options,
    )


def _run_weights(path: Path, data: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """A run method's weights: files named relative to its folder, which must stay inside it and still have the
    sha256 its ``weights_sha256`` recorded (the training wrote both); a ConfigError naming the file otherwise."""
    from sr.weights import sha256_of

    weights = dict(options.get("weights") or {})
    recorded = data.get("weights_sha256") or {}
    folder = path.parent.resolve()
    for role, digest in recorded.items():
        file = (folder / str(weights.get(role, ""))).resolve()
        if folder not in file.parents or not file.is_file():
            raise ConfigError(f"{path}: weights.{role} = {weights.get(role)!r} is not a file inside {folder}")
        if sha256_of(file) != digest:
            raise ConfigError(
                f"{path}: {file.name} does not have the sha256 the training recorded ({digest[:12]}...): the run "
                f"folder was changed after training; train it again"
            )
        weights[role] = str(file)
    return {**options, "weights": weights}


def check_method(name: str) -> MethodSpec:
    """The spec of method ``name`` once its factory is an SRMethod subclass and its YAML options fit it."""
    spec = method_spec(name)
    factory = METHODS.check(name, spec.options, skip=("name", "scale")).factory
    if not (isinstance(factory, type) and issubclass(factory, SRMethod)):
        raise ConfigError(f"{METHODS.where(name)}: method factory {spec.factory!r} is not an SRMethod subclass")
    return spec


def method_label(name: str) -> str:
    """The name a method's rows carry: NAME (or the folder's name) for ``outputs:DIR[=NAME]``, else ``name``."""
    if name.startswith(METHOD_OUTPUTS_PREFIX):
        from sr.methods.outputs import parse_outputs_spec

        return parse_outputs_spec(name)[0]
    return name


def load_method(name: str, **opts: Any) -> SRMethod:
    """Build method ``name`` (or a folder of outputs, ``outputs:DIR[=NAME]``) with its YAML options overridden by
    ``opts``."""
    if name.startswith(METHOD_OUTPUTS_PREFIX):
        from sr.methods.outputs import DEFAULT_SCALE, OutputFolder, parse_outputs_spec

        label, folder = parse_outputs_spec(name)
        return OutputFolder(label, opts.pop("scale", DEFAULT_SCALE), folder=folder, **opts)
    spec = check_method(name)
    scale = opts.pop("scale", spec.scale)
    if scale != spec.scale:
        raise ConfigError(f"method {name!r} is a x{spec.scale} method; scale {scale} was asked for")
    yaml_options = {k: v for k, v in spec.options.items() if k not in opts}
    method = METHODS.build(name, yaml_options, fixed={"name": name, "scale": spec.scale}, untyped=opts)
    # options the method set itself (e.g. a digest of the files it reads) are part of its identity too
    method.options = {k: v for k, v in {**yaml_options, **opts}.items() if k not in COMMON_OPTIONS} | method.options
    return method
