"""``irsr validate FILE``: check a method, data set, task, suite, training or degradation YAML without running it.

The file goes through the loader that a run would use, up to the point where work would start: its keys, its
factory (imported, not called), its options against the factory's parameters and their types, and the names it
refers to (a suite's data sets, methods, metrics, tasks and degradations; a degradation's every severity, as a
run would resolve it). Nothing is built, read from a data folder or
downloaded, so weights or data that are not on this machine are no error here (``irsr ls`` shows those). A
valid file prints one ``ok:`` line (exit 0); a broken one one ``error:`` line (exit 2).

What the file is comes from ``--kind``, else from the folder it is in (``configs/methods/`` ...), else from its
keys: ``scale`` (method), ``kind`` (data set), ``datasets`` (suite), ``objective`` (training), ``stage``
(degradation), ``factory`` (task).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sr import cli
from sr.cli import cli_entry
from sr.config import read_config
from sr.errors import ConfigError, check_keys

#: kind -> the configs/ folder of that kind
FOLDERS = {
    "method": "methods",
    "dataset": "datasets",
    "task": "tasks",
    "suite": "suites",
    "train": "train",
    "degradation": "degradations",
}
#: the first key of a YAML (in this order) that tells its kind when its folder does not
KEYS = (
    ("scale", "method"),
    ("kind", "dataset"),
    ("datasets", "suite"),
    ("objective", "train"),
    ("stage", "degradation"),
    ("factory", "task"),
)


def kind_of(path: Path, data: dict) -> str:
    by_folder = {folder: kind for kind, folder in FOLDERS.items()}
    if path.parent.name in by_folder:
        return by_folder[path.parent.name]
    for key, kind in KEYS:
        if key in data:
            return kind
    raise ConfigError(
        f"{path}: cannot tell what this YAML configures (none of the keys {', '.join(k for k, _ in KEYS)}); "
        f"give --kind {{{','.join(FOLDERS)}}}"
    )


def _method(path: str) -> str:
    from sr.registry import check_method

    spec = check_method(path)
    return f"method {spec.name} ({spec.factory}, x{spec.scale})"


def _dataset(path: str) -> str:
    from downstream.datasets import DATASET_KINDS, dataset_config

    cfg = dataset_config(path)
    options = {k: v for k, v in cfg.items() if k not in ("kind", "description", "name")}
    DATASET_KINDS.check(cfg["kind"], options, skip=("name",))
    return f"data set of kind {cfg['kind']}"


def _task(path: str) -> str:
    from downstream.tasks import task_class

    return f"task {task_class(path).__name__}"


def _suite(path: str) -> str:
    from benchmarks.suites import load_suite
    from downstream.datasets import dataset_config
    from downstream.metrics import METRICS
    from downstream.tasks import task_class
    from sr.errors import UnknownNameError
    from sr.registry import list_methods

    suite = load_suite(path)
    for name in suite.datasets:
        dataset_config(name)
    known = list_methods()
    for name in () if suite.methods == "all" else suite.methods:
        if name not in known:
            raise UnknownNameError(f"method (in {path})", name, known)
    for name in suite.metrics:
        METRICS.get(name)
    for config in suite.tasks.values():
        task_class(config)
    return f"suite {suite.name}: {len(suite.datasets)} data set(s), {len(suite.tasks)} task(s)"


def _train(path: str) -> str:
    from sr.train.config import TOP_KEYS, load_config

    if Path(path).name.startswith("_"):  # a shared base, only read through other configs' ``base:``
        check_keys(path, read_config(path), TOP_KEYS)
        return "training base config (used through 'base:')"
    cfg = load_config(path)
    return f"training config {cfg.name} (objective {cfg.objective['kind']})"


def _degradation(path: str) -> str:
    from downstream.degradations import DEGRADATIONS, resolve
    from downstream.degradations.pipeline import SEPARATOR, SEVERITIES

    labels = [f"{path}{SEPARATOR}{s}" for s in SEVERITIES] if DEGRADATIONS.config(path).get("severities") else [path]
    steps = [resolve(label) for label in labels][-1].steps  # every severity resolved, its operators' options checked
    severities = "severities 1-5" if len(labels) > 1 else "no severities"
    return f"degradation ({severities}; steps {', '.join(Path(s.name).stem for s in steps)})"


CHECKS = {
    "method": _method,
    "dataset": _dataset,
    "task": _task,
    "suite": _suite,
    "train": _train,
    "degradation": _degradation,
}


def validate(path: Path, kind: str | None = None) -> str:
    """What ``path`` is, once checked; a UserError naming the file and the problem otherwise."""
    kind = kind or kind_of(path, read_config(path))
    return CHECKS[kind](str(path))


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=cli.existing_file, help="the YAML to check")
    p.add_argument("--kind", choices=sorted(CHECKS), default=None, help="what the file is (default: guessed)")
    return p


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(f"ok: {args.file}: {validate(args.file, args.kind)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
