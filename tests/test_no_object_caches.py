"""No module of the packages keeps objects between runs in module state: the run's expensive objects live in an
explicit ``benchmarks.resources.Resources`` passed in. The scan reads the packages' own files (never the folder
around them) and flags (1) a module-level container (dict, list, set, defaultdict, ...) that a function mutates,
(2) a function cached with ``functools.cache`` / ``lru_cache`` whose declared return type is not plain data (a
model, a metric, a task, ``Any`` or no annotation)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGES = ("sr", "downstream", "benchmarks", "reports")
CONTAINERS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter", "WeakValueDictionary"}
MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "pop", "popitem", "clear", "remove"}
CACHES = {"cache", "lru_cache"}
#: what a cached function may return: values, never objects with state (a new type here needs a reason)
DATA_TYPES = {"dict", "list", "tuple", "str", "int", "float", "bool", "None", "Path", "pd", "DataFrame"}
DATA_TYPES |= {"WeightsEntry", "MetricSpec"}  # frozen dataclasses of a YAML entry's fields
#: module state that is not an object cache: file -> name -> why
ALLOWED = {
    "sr/runtime.py": {"_state": "the process's glibc allocator tuning status (mallopt applies once per process)"},
    "downstream/detection/offline.py": {"ATTEMPTS": "strings: the downloads ultralytics tried, for the tests"},
    "downstream/datasets/base.py": {"_WARNED": "(name, sizes) of the short-data-set warnings already logged"},
    "downstream/datasets/folder.py": {"_WARNED": "(folder, counts) of the unpaired-label warnings already logged"},
    # set only in a forked worker process, by its initializer: the one run that worker serves, never in the run's
    # own process (the run's objects are its Resources, handed to the worker through the fork)
    "benchmarks/pool.py": {"_WORKER": "a worker process's run: its settings and the run's Resources"},
    # the plug-in registry is process-wide by design, like Python's own import system: what is registered (classes,
    # functions) and which entry-point groups were scanned, never a built model
    "sr/plugins.py": {
        "_loaded": "entry-point names already loaded",
        "_pending": "registrations waiting for their kind's registry",
        "_registries": "the registry of each plug-in kind",
        "_scanned": "entry-point groups already scanned",
    },
}


def _module_containers(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        literal = isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp)
        call = isinstance(value, ast.Call) and (
            getattr(value.func, "id", None) in CONTAINERS or getattr(value.func, "attr", None) in CONTAINERS
        )
        if literal or call:
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _mutated(func: ast.AST, containers: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            target = node.func.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in containers:
            found.add(target.id)
    return found


def _annotation_names(node: ast.AST | None) -> set[str]:
    if node is None:
        return {"<none>"}
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    names |= {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return names | ({"None"} if any(isinstance(n, ast.Constant) and n.value is None for n in ast.walk(node)) else set())


def object_caches(source: str, allowed: dict[str, str] | None = None) -> list[str]:
    """What in ``source`` keeps objects in module state (see the module doc), as ``name: why`` lines."""
    tree = ast.parse(source)
    containers = _module_containers(tree) - set(allowed or {})
    hits = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        hits += [f"{name}: module-level container mutated in {func.name}()" for name in _mutated(func, containers)]
        decorators = {getattr(d.func if isinstance(d, ast.Call) else d, "id", None) for d in func.decorator_list}
        decorators |= {getattr(d.func if isinstance(d, ast.Call) else d, "attr", None) for d in func.decorator_list}
        returned = _annotation_names(func.returns)
        if decorators & CACHES and not returned <= DATA_TYPES:
            hits.append(f"{func.name}: cached function returning {sorted(returned - DATA_TYPES)}")
    return sorted(set(hits))


def _package_files() -> list[tuple[str, Path]]:
    files = []
    for package in PACKAGES:
        root = Path(importlib.import_module(package).__file__).parent
        files += [(f"{package}/{p.relative_to(root).as_posix()}", p) for p in sorted(root.rglob("*.py"))]
    return files


def test_no_module_level_object_cache_in_the_packages():
    hits = []
    for rel, path in _package_files():
        hits += [f"{rel}: {hit}" for hit in object_caches(path.read_text(encoding="utf-8"), ALLOWED.get(rel))]
    assert not hits, "\n".join(hits)


def test_every_allowed_entry_still_exists():
    files = dict(_package_files())
    for rel, names in ALLOWED.items():
        tree = ast.parse(files[rel].read_text(encoding="utf-8"))
        assert set(names) <= _module_containers(tree), rel


def test_the_scan_finds_planted_object_caches():
    planted = """
import functools
import torch
from sr.registry import load_method

_MODELS = {}
_SEEN: dict[str, int] = dict()
CONSTANT = {"a": 1}

def model(name):
    if name not in _MODELS:
        _MODELS[name] = load_method(name)
    return _MODELS[name]

def remember(name):
    _SEEN.setdefault(name, 0)

@functools.lru_cache(maxsize=None)
def network(path) -> torch.nn.Module:
    return torch.load(path)

@functools.cache
def builder(path):
    return object()

@functools.lru_cache(maxsize=1)
def names() -> dict[str, str]:
    return dict(CONSTANT)

def read():
    return CONSTANT["a"]
"""
    assert object_caches(planted) == [
        "_MODELS: module-level container mutated in model()",
        "_SEEN: module-level container mutated in remember()",
        "builder: cached function returning ['<none>']",
        "network: cached function returning ['Module', 'nn', 'torch']",
    ]
    assert object_caches(planted, {"_MODELS": "why", "_SEEN": "why"}) == [
        "builder: cached function returning ['<none>']",
        "network: cached function returning ['Module', 'nn', 'torch']",
    ]
