"""``python -m benchmarks.run``: the main job. Runs a suite's (data set x method) grid, writes
``<out>/results.csv`` (one long-format row per suite, data set, method, task, metric, class) and
regenerates the report from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import platform
import sys
import time
from argparse import Namespace
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from benchmarks.background import DEFAULT_PREFETCH
from benchmarks.cache import RunCache
from benchmarks.job.context import Settings
from benchmarks.pool import (
    MAX_AUTO_WORKERS,
    WORKER_THREADS,
    JobPool,
    default_workers,
    parse_workers,
    resolve_workers,
)
from benchmarks.resources import Resources
from benchmarks.runner import run_job
from benchmarks.suites import DEFAULT_SUITE, list_suites, load_suite
from downstream.datasets import dataset_label
from downstream.evidence import DEFAULT_REFERENCE
from downstream.task_flags import flag_void_tasks
from sr import cli
from sr.atomic import atomic_path, atomic_write_text
from sr.cli import cli_entry
from sr.errors import ConfigError, UnknownNameError, UserError
from sr.ownership import add_overwrite_option, check_apart, claim_folder
from sr.registry import list_methods, method_label
from sr.vocab import (
    COL_DATASET,
    COL_DEGRADATION,
    COL_ERROR,
    COL_METHOD,
    COL_METRIC,
    COL_SUITE,
    EFFICIENCY_FILE,
    ENV_WORKERS,
    METHOD_OUTPUTS_PREFIX,
    OPT_DEGRADATIONS,
    OPT_EFFICIENCY,
    OPT_PREFETCH,
    OPT_RANDOM_WEIGHTS,
    OPT_REFERENCE,
    OPT_WORKERS,
    RESULT_COLUMNS,
)

EXECUTORS = ("local", "ray")

#: what a run writes in its --out folder (sr.ownership: only these are ever replaced or cleaned there)
RUN_ENTRIES = (
    *("cache/", "sr_outputs/", "jobs/", "per_image/", "work/", "report/"),
    *("results.csv", "run.json", ".results.lock", EFFICIENCY_FILE),
)
#: LR frame size of the efficiency table besides each data set's own (x4: 1024x1024 output); on CPU a smaller one,
#: and data sets' sizes only up to EFFICIENCY_CPU_MAX_PIXELS (the big networks take minutes per call there)
EFFICIENCY_SIZE = {"cuda": "256x256", "cpu": "64x64"}
EFFICIENCY_CPU_MAX_PIXELS = 128 * 128


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Super-resolve every data set of a suite with every method, score the outputs with "
        "quality metrics and downstream tasks, and write results.csv plus a report.",
    )
    _add_selection_options(p)
    p.add_argument("--out", default=None, help="output directory (default: runs/<suite>)")
    add_overwrite_option(p)
    p.add_device()
    p.add_weights_dir()
    p.add_argument(
        "--limit", type=cli.positive_int, default=None, help="use only the first N samples of every data set"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (per sample, order-independent)")
    p.add_argument(
        OPT_RANDOM_WEIGHTS,
        action="store_true",
        help="build networks whose weights are missing with random weights (for tests; every "
        "number made so is flagged 'random_weights')",
    )
    p.add_argument(
        OPT_PREFETCH,
        type=cli.non_negative_int,
        default=DEFAULT_PREFETCH,
        metavar="N",
        help="frames decoded ahead of the SR step, and SR PNGs written behind it, in two background threads "
        "(bounds the frames held in memory; 0: all in one thread, one frame at a time); the results are the same",
    )
    p.add_argument(
        OPT_WORKERS,
        type=parse_workers,
        default=default_workers(),
        metavar="N",
        help="local executor (ignored by ray): worker processes that run the jobs, one method at a time "
        f"(benchmarks.pool); auto: the usable cores up to {MAX_AUTO_WORKERS} on Linux's CPU, else 1 (a GPU, another "
        "platform); never more than the methods; 1: the jobs run in this process with torch's own thread count. "
        "Each worker computes with one torch thread; values depend on the thread count at float rounding level, "
        f"run.json records both (default: ${ENV_WORKERS}, else auto)",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help=f"local: on this machine ({OPT_WORKERS}); ray: fan the jobs out to a Ray cluster",
    )
    p.add_argument("--ray-address", default=None, help="Ray cluster address (ray://host:port); default: local Ray")
    p.add_argument("--no-report", action="store_true", help="do not regenerate the report at the end")
    p.add_argument(
        OPT_EFFICIENCY,
        action="store_true",
        help=f"also measure every method's parameters, FLOPs, latency and peak memory into {EFFICIENCY_FILE} (the "
        f"report's efficiency table): LR {EFFICIENCY_SIZE['cuda']} (x4: 1024x1024) and each data set's LR size on "
        f"CUDA; on CPU LR {EFFICIENCY_SIZE['cpu']} and the data sets' sizes up to {EFFICIENCY_CPU_MAX_PIXELS} pixels",
    )
    p.add_argument(
        OPT_REFERENCE,
        default=None,
        help=f"method (one of --methods) every other one is compared with in the report's significance.csv "
        f"(default: {DEFAULT_REFERENCE})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _add_selection_options(p: cli.ArgumentParser) -> None:
    """What runs: the suite, methods, data sets, tasks, degradations and metrics."""
    p.add_argument(
        "--suite", default=DEFAULT_SUITE, help=f"suite YAML in configs/suites/ (available: {', '.join(list_suites())})"
    )
    p.add_argument(
        "--methods",
        type=cli.names,
        default=None,
        help="'all' or a comma-separated list of method names (default: the suite's list), or "
        f"{METHOD_OUTPUTS_PREFIX}DIR[=NAME] for a folder of SR outputs made elsewhere, one image per frame named "
        f"by its id (docs/own_outputs.md); registered: {', '.join(list_methods())}",
    )
    p.add_argument(
        "--datasets",
        type=cli.names,
        default=None,
        help="comma-separated data sets (configs/datasets/ names, "
        "data-set YAML paths such as OUT/dataset.yaml of a prepare command, or kind:path, e.g. "
        "folder:/data/frames); default: the suite's",
    )
    p.add_argument(
        "--tasks",
        type=cli.names,
        default=None,
        help="comma-separated subset of 'quality' and the suite's tasks, and task YAMLs (RUN/task.yaml of "
        "a train --dataset run; the task column is the task's own name) (default: all the suite has)",
    )
    p.add_argument(
        OPT_DEGRADATIONS,
        type=_degradation_list,
        default=None,
        metavar="LIST",
        help="the degradation axis: comma-separated NAME or NAME@SEVERITY (1-5) from configs/degradations/, e.g. "
        "bicubic,noise@3,stripe@5,sensor@2; every data set runs under each and results.csv's 'degradation' column "
        "says which (default: the suite's, else bicubic, the paper's)",
    )
    p.add_argument(
        "--metrics", type=cli.names, default=None, help="comma-separated quality metrics (default: the suite's)"
    )


def _degradation_list(text: str) -> list[str]:
    from downstream.degradations import parse_list

    try:
        return parse_list(text)
    except UserError as exc:
        raise cli.argparse.ArgumentTypeError(str(exc)) from None


def resolve_plan(args: Namespace) -> tuple[list[str], list[str], Settings]:
    suite = load_suite(args.suite)
    methods = args.methods or (["all"] if suite.methods == "all" else list(suite.methods))
    if methods == ["all"]:
        methods = list_methods() if suite.methods == "all" else list(suite.methods)
    datasets = args.datasets or list(suite.datasets)
    from downstream.datasets import dataset_config

    for name in datasets:  # resolved now: an unknown name is a usage error, not a row
        dataset_config(name)
    dataset_files = _dataset_files(datasets)
    datasets = [dataset_label(d) for d in datasets]
    tasks, explicit = _task_files(args.tasks)
    if tasks is not None:
        known = ["quality", *suite.tasks]
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise UnknownNameError(f"task of suite {suite.name!r} (--tasks)", unknown[0], known)
    metrics = args.metrics or list(suite.metrics)
    if tasks is not None and "quality" not in tasks:
        metrics = []
    task_configs = {t: c for t, c in suite.tasks.items() if tasks is None or t in tasks}
    task_configs.update(explicit)
    from downstream.tasks import task_class

    for config in task_configs.values():  # factory and options checked before any job
        task_class(config)
    from downstream.metrics import METRICS

    for name in metrics:
        METRICS.get(name)  # an unknown name: UnknownNameError with "did you mean"
    method_specs = {method_label(m): m for m in methods if m.startswith(METHOD_OUTPUTS_PREFIX)}
    methods = [method_label(m) for m in methods]
    known_methods = set(list_methods())
    for name in methods:
        if methods.count(name) > 1 or (name in method_specs and name in known_methods):
            raise ConfigError(f"--methods: two methods would be named {name!r}; give the folder another =NAME")
        if name not in known_methods and name not in method_specs:
            raise UnknownNameError("method", name, known_methods)
    if args.reference is not None and args.reference not in methods:
        raise UnknownNameError(f"{OPT_REFERENCE} method (not among the run's methods)", args.reference, methods)
    out = Path(args.out or Path("runs") / suite.name).expanduser()
    check_apart(out, _source_folders(datasets, dataset_files, method_specs))  # before the folder is made
    out = cli.check_writable_dir(out)
    claim_folder(out, "run", RUN_ENTRIES, overwrite=args.overwrite)  # a user's folder is refused, never written
    settings = Settings(
        suite=suite.name,
        out=out.resolve(),
        metrics=tuple(metrics),
        tasks=task_configs,
        device=args.device,
        weights_dir=args.weights_dir and str(args.weights_dir),
        limit=args.limit,
        seed=args.seed,
        random_weights=args.random_weights,
        progress=not args.quiet,
        prefetch=args.prefetch,
        dataset_files=dataset_files,
        method_specs=method_specs,
        degradations=tuple(args.degradations or suite.degradations),
    )
    return datasets, methods, settings


def _source_folders(datasets: list[str], dataset_files: dict[str, str], method_specs: dict[str, str]) -> list[Path]:
    """The folders a run reads from: each data set's root and each ``outputs:DIR`` method's folder (the run folder
    must be apart from all of them: :func:`sr.ownership.check_apart`)."""
    from downstream.datasets import dataset_config, resolve_root
    from sr.methods.outputs import parse_outputs_spec

    roots = []
    for name in datasets:
        root = dataset_config(dataset_files.get(name, name)).get("root")
        if isinstance(root, str) and root:
            roots.append(resolve_root(root))
    return roots + [parse_outputs_spec(spec)[1] for spec in method_specs.values()]


def _dataset_files(datasets: list[str]) -> dict[str, str]:
    """{row name: YAML path} of the data sets given as YAML paths; two with the same row name are an error."""
    files: dict[str, str] = {}
    for entry in datasets:
        if entry.endswith((".yaml", ".yml")):
            label = dataset_label(entry)
            if label in files or label in datasets:
                raise ConfigError(
                    f"--datasets: {entry} and {files.get(label, label)} would both be named {label!r} "
                    "in the results; give one YAML another 'name:'"
                )
            files[label] = entry
    return files


def _task_files(tasks: list[str] | None) -> tuple[list[str] | None, dict[str, str]]:
    """Split ``--tasks`` into suite task keys and explicit task YAMLs (``RUN/task.yaml``): {task name: path}, keyed
    by the plugin's own name (``Task.name``), so a trained model's rows land under its task."""
    if tasks is None:
        return None, {}
    from downstream.tasks import task_class

    explicit = {}
    for entry in tasks:
        if entry.endswith((".yaml", ".yml")):
            name = task_class(entry).name
            if name in explicit:
                raise ConfigError(f"--tasks: {explicit[name]} and {entry} are both {name!r} tasks; run them separately")
            explicit[name] = entry
    return [t for t in tasks if not t.endswith((".yaml", ".yml"))], explicit


def check_task_classes(datasets: list[str], settings: Settings, resources: Resources) -> None:
    """Before any work: a task model trained for other classes than a data set's is a one-line error (exit 2).

    Tasks or data sets that cannot be built are left to the runner, which reports them as rows."""
    from downstream.datasets import load_dataset

    loaded = {}
    for name in datasets:
        try:
            loaded[name] = load_dataset(settings.dataset_files.get(name, name))
        except UserError:
            continue
    for config in settings.tasks.values():
        task = resources.task(config)  # built once for the run: the jobs get this same object
        if isinstance(task, Exception):
            continue
        for dataset in loaded.values():
            if task.applicable(dataset):
                task.check_classes(task.dataset_classes(dataset))


def execute(
    datasets: list[str],
    methods: list[str],
    settings: Settings,
    executor: str = "local",
    ray_address: str | None = None,
    resources: Resources | None = None,
    pool: JobPool | None = None,
) -> pd.DataFrame:
    """Every (data set, degradation, method) job; rows in data-set-major order. Locally the jobs run method by
    method, in ``pool``'s worker processes or else in this process with one ``Resources`` for the run
    (``resources``, or a new one), so each SR method is built once per process."""
    jobs = [(d, m, g) for d in datasets for g in settings.degradations for m in methods]
    RunCache(settings.out / "cache").sweep_stale_temporaries()
    if executor == "ray":
        from benchmarks.ray_executor import run_jobs_on_ray

        batches = run_jobs_on_ray(jobs, settings, ray_address)
    else:
        by_method = sorted(jobs, key=lambda job: methods.index(job[1]))
        if pool is not None:
            groups = [[job for job in by_method if job[1] == method] for method in methods]
            finished = pool.run([group for group in groups if group])
        else:
            resources = resources or Resources.for_settings(settings)
            finished = ((job, run_job(job[0], job[1], settings, resources, job[2])) for job in by_method)
        done = {}
        for i, (job, rows) in enumerate(finished, 1):
            done[job] = rows
            if settings.progress:
                dataset, method, degradation = job
                print(f"[{i}/{len(jobs)}] {dataset} / {degradation} / {method}", file=sys.stderr, flush=True)
        batches = [done[job] for job in jobs]
    rows = [row for batch in batches for row in batch]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created if needed) for the duration of the block."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _union(path: Path, results: pd.DataFrame, jobs: set[tuple[str, str, str, str]]) -> pd.DataFrame:
    """``results`` plus the rows of ``path`` (an earlier or concurrent run into the same folder) whose
    (suite, data set, method, degradation) job is not one of ``jobs``: runs sharing --out add up instead of
    replacing (rows of a results.csv from before the degradation axis are bicubic's)."""
    if not path.is_file():
        return results
    from reports.tables import load_results

    try:
        old = load_results(path)
    except UserError as exc:
        raise UserError(
            f"cannot merge this run's rows into {path}: {exc}. Move the file away, or use another --out"
        ) from None
    keep = [
        job not in jobs
        for job in zip(
            old[COL_SUITE].astype(str),
            old[COL_DATASET].astype(str),
            old[COL_METHOD].astype(str),
            old[COL_DEGRADATION].astype(str),
        )
    ]
    kept = old[keep]
    if kept.empty:
        return results
    columns = list(results.columns) + [c for c in kept.columns if c not in results.columns]
    return pd.concat([results, kept], ignore_index=True)[columns]


def write_results(
    results: pd.DataFrame,
    settings: Settings,
    started: float,
    jobs: list[tuple[str, str, str]] | None = None,
    execution: dict[str, int] | None = None,
) -> tuple[Path, pd.DataFrame]:
    """Write ``<out>/results.csv`` (and run.json) under a lock on the folder: the rows of this run's ``jobs``
    (data set, method, degradation) replace their earlier rows, the rows of other jobs already there are kept.
    ``execution``: the worker processes and torch threads the jobs ran with (run.json; values depend on the
    threads at float rounding level). Returns the path and the table written."""
    settings.out.mkdir(parents=True, exist_ok=True)
    path = settings.out / "results.csv"
    if jobs is None:
        jobs = list(
            zip(results[COL_DATASET].astype(str), results[COL_METHOD].astype(str), results[COL_DEGRADATION].astype(str))
        )
    with _locked(settings.out / ".results.lock"):
        results = flag_void_tasks(_union(path, results, {(settings.suite, d, m, g) for d, m, g in jobs}))
        with atomic_path(path) as tmp:
            results.to_csv(tmp, index=False)
        _write_run_json(results, settings, started, execution or {})
    return path, results


def _write_run_json(results: pd.DataFrame, settings: Settings, started: float, execution: dict[str, int]) -> None:
    versions = {}
    for pkg in ("torch", "torchvision", "pyiqa", "ultralytics", "mmsegmentation", "mmengine", "pandas"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    meta = {
        "suite": settings.suite,
        "seed": settings.seed,
        "device": settings.device,
        "random_weights": settings.random_weights,
        "metrics": settings.metrics,
        "tasks": settings.tasks,
        "limit": settings.limit,
        "python": platform.python_version(),
        "versions": versions,
        "weights_dir": settings.weights_dir,
        "seconds": round(time.time() - started, 1),
        **execution,  # workers, torch_threads
        "dataset_files": settings.dataset_files,
    }
    # per method (name, options, weights sha256, flags) and per task (config, settings, weights sha256), from
    # the per-job files the runner wrote: nothing is rebuilt here
    methods: dict[str, dict] = {}
    task_identities: dict[str, dict] = {}
    task_specs: dict[str, dict] = {}
    wanted = set(results[COL_METHOD].astype(str)) if len(results) else set()
    for job in sorted((settings.out / "jobs").glob("*.json")):
        try:
            ident = json.loads(job.read_text())
        except (OSError, ValueError):
            continue
        name = str(ident.pop("method", ""))
        ident.pop("dataset", None)
        for task_name, task_ident in (ident.pop("tasks", None) or {}).items():
            if task_name not in task_identities or "error" in task_identities[task_name]:
                task_identities[task_name] = task_ident
        task_specs.update(ident.pop("task_specs", None) or {})
        if name in wanted and name not in methods:
            methods[name] = ident
    meta["methods"] = methods
    meta["task_identities"] = task_identities
    meta["task_specs"] = task_specs
    from downstream.metrics import (
        metric_provenance,  # which file each metric read (bundled NIQE fallback or not)
    )

    meta["metric_files"] = metric_provenance(
        settings.metrics, settings.weights_dir, random_weights=settings.random_weights
    )
    atomic_write_text(settings.out / "run.json", json.dumps(meta, indent=2, default=str))


def efficiency_sizes(datasets: list[str], settings: Settings) -> list[str]:
    """LR sizes ``WxH`` of the efficiency table: :data:`EFFICIENCY_SIZE` of the device, then each data set's (its first
    frame's LR size; on CPU only up to :data:`EFFICIENCY_CPU_MAX_PIXELS`, the others named on stderr)."""
    from downstream.datasets import load_dataset

    cuda = settings.device.startswith("cuda")
    sizes = [EFFICIENCY_SIZE["cuda" if cuda else "cpu"]]
    for name in datasets:
        try:
            dataset = load_dataset(settings.dataset_files.get(name, name))
            lr = dataset.load(dataset.ids()[0], labels=False).lr
        except (UserError, IndexError):
            continue  # the run's rows already say why the data set cannot be read
        if lr is None:
            continue
        h, w = int(lr.shape[-2]), int(lr.shape[-1])
        if not cuda and h * w > EFFICIENCY_CPU_MAX_PIXELS:
            print(f"efficiency: {name}'s LR size {w}x{h} not measured on CPU (too slow there)", file=sys.stderr)
            continue
        sizes.append(f"{w}x{h}")
    return list(dict.fromkeys(sizes))


def measure_efficiency(datasets: list[str], methods: list[str], settings: Settings) -> Path:
    """The run's efficiency step: ``python -m benchmarks.speed.efficiency`` on the run's registered methods, in a child
    process (the runner loads none of the speed tools), merged into ``<out>/efficiency.csv``."""
    import os
    import subprocess

    path = settings.out / EFFICIENCY_FILE
    registered = [m for m in methods if m not in settings.method_specs]  # a folder of outputs computes nothing
    cmd = [sys.executable, "-m", "benchmarks.speed.efficiency", "--methods", ",".join(registered)]
    cmd += ["--sizes", ",".join(efficiency_sizes(datasets, settings)), "--device", settings.device, "--out", str(path)]
    if settings.weights_dir:
        cmd += ["--weights-dir", settings.weights_dir]
    if settings.random_weights:
        cmd.append(OPT_RANDOM_WEIGHTS)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    code = subprocess.call(cmd, env=env, stdout=sys.stderr)
    if not path.is_file():
        raise UserError(f"the efficiency step ({' '.join(cmd[1:])}) wrote no {path.name} (exit {code})")
    return path


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.time()
    datasets, methods, settings = resolve_plan(args)
    resources = Resources.for_settings(settings)  # the run's SR methods, metrics and task networks
    workers = resolve_workers(args.workers, settings.device, len(methods)) if args.executor == "local" else 1
    with JobPool(settings, workers, resources) if workers > 1 else contextlib.nullcontext() as pool:
        check_task_classes(datasets, settings, resources)
        results = execute(datasets, methods, settings, args.executor, args.ray_address, resources, pool)
        jobs = [(d, m, g) for d in datasets for m in methods for g in settings.degradations]
        threads = WORKER_THREADS if pool else torch.get_num_threads()
        path, _ = write_results(results, settings, started, jobs, {"workers": workers, "torch_threads": threads})
        unavailable = results[results[COL_METRIC] == "unavailable"]
        for _, row in unavailable.iterrows():
            job = f"{row[COL_DATASET]} / {row[COL_DEGRADATION]} / {row[COL_METHOD]}"  # as the progress lines name it
            print(f"skipped {job}: {row[COL_ERROR]}", file=sys.stderr)
        print(f"results: {path} ({len(results)} rows, {time.time() - started:.0f} s)")
        if args.efficiency:
            print(f"efficiency: {measure_efficiency(datasets, methods, settings)}")
        if not args.no_report:
            from reports.build import build_reports

            # the run's task networks go along (in the workers when there are any): Figures 4/5 build none again;
            # the workers draw the figures beside the report's other work
            report_dir = build_reports(
                path,
                settings.out / "report",
                reference=args.reference or DEFAULT_REFERENCE,
                tasks=pool.task if pool else resources.task,
                draw_in=pool.submit if pool else None,
            )
            print(f"report: {report_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
