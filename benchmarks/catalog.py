"""``irsr ls {methods,datasets,metrics,tasks,suites}``: what exists here, and what is missing to run it.

Methods are listed with the status of the weights their YAML names (``options.weights``: one registry name or
path, or role -> name): ``ok``, ``none needed``, or ``missing`` with each missing file, where it is expected and
where to get it. Data sets say whether their root folder is on this machine and how to prepare it; metrics the
status of their weights files. Nothing is built or downloaded: listing is cheap and never fails on one bad
entry (that entry's line says what is wrong).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from sr import cli
from sr.cli import cli_entry
from sr.errors import UserError

KINDS = ("methods", "datasets", "metrics", "tasks", "suites")


def weights_status(weights, weights_dir=None) -> tuple[str, list[str]]:
    """(``ok`` | ``none needed`` | ``missing``, one line per missing file naming it and where to get it)."""
    from sr.weights import resolve_weights

    if not weights:
        return "none needed", []
    entries = weights.items() if isinstance(weights, dict) else [("weights", weights)]
    missing = []
    for role, name in entries:
        try:
            resolve_weights(name, weights_dir, what=f"weights {role}")
        except UserError as exc:  # MissingWeightsError, or a name the registry does not know
            missing.append(str(exc))
    return ("missing" if missing else "ok"), missing


def _methods(weights_dir) -> Iterator[tuple[str, str, list[str]]]:
    from sr.registry import list_methods, method_spec

    for name in list_methods():
        try:
            spec = method_spec(name)
        except UserError as exc:
            yield name, "invalid", [str(exc)]
            continue
        status, missing = weights_status(spec.options.get("weights"), weights_dir)
        what = f"{spec.paper_name}, {spec.family or 'method'} x{spec.scale}"
        yield name, f"{status:<12} {what}", missing


def _datasets(weights_dir) -> Iterator[tuple[str, str, list[str]]]:
    from downstream.datasets import dataset_config, list_datasets, resolve_root

    for name in list_datasets():
        try:
            cfg = dataset_config(name)
        except UserError as exc:
            yield name, "invalid", [str(exc)]
            continue
        root = cfg.get("root")
        if root is None:  # made on the fly (synthir)
            yield name, f"{'ready':<12} kind {cfg['kind']}, generated", []
            continue
        path = resolve_root(root)
        if path.is_dir():
            yield name, f"{'ready':<12} kind {cfg['kind']}, {path}", []
        else:
            notes = [f"{path} is not on this machine; " + (cfg.get("description") or "").strip().splitlines()[0]]
            yield name, f"{'missing':<12} kind {cfg['kind']}", notes


def _metrics(weights_dir) -> Iterator[tuple[str, str, list[str]]]:
    from downstream.metrics import metric_specs

    for name, spec in metric_specs().items():
        own = {role: entry for role, entry in spec.files.items() if role not in spec.fallback_files}
        status, missing = weights_status(own, weights_dir)
        yield name, f"{status:<12} {spec.kind}, {'higher' if spec.higher_better else 'lower'} is better", missing


def _described(registry_names: Callable[[], list[str]], config: Callable[[str], dict]):
    def rows(weights_dir) -> Iterator[tuple[str, str, list[str]]]:
        for name in registry_names():
            try:
                description = " ".join(str(config(name).get("description") or "").split())
            except UserError as exc:
                yield name, "invalid", [str(exc)]
                continue
            yield name, description[:100] + ("..." if len(description) > 100 else ""), []

    return rows


def rows(kind: str, weights_dir=None) -> list[tuple[str, str, list[str]]]:
    """(name, one-line status or description, notes) of every entry of ``kind`` (one of :data:`KINDS`)."""
    from benchmarks.suites import SUITES
    from downstream.tasks import TASKS

    listers = {
        "methods": _methods,
        "datasets": _datasets,
        "metrics": _metrics,
        "tasks": _described(TASKS.names, TASKS.config),
        "suites": _described(SUITES.names, SUITES.config),
    }
    return list(listers[kind](weights_dir))


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.catalog", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=KINDS, help="what to list")
    p.add_weights_dir()
    return p


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    found = rows(args.kind, args.weights_dir)
    width = max((len(name) for name, _, _ in found), default=0)
    for name, status, notes in found:
        print(f"{name:<{width}}  {status}".rstrip())
        for note in notes:
            print(f"{'':<{width}}    {note}")
    if args.kind in ("methods", "metrics"):
        from sr.weights import weights_dir

        print(f"(weights directory: {weights_dir(args.weights_dir)}; python -m sr.weights list shows every file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
