"""``python -m benchmarks.reproduce --scale {demo,paper} --out DIR [--only TABLES] [--iterations N]``: the paper, end
to end.

1. **Train** every SR run the selected tables need (the ablation rows of main Tables 3/4 and supplementary Tables
   2/3: :data:`reports.paper_tables.ABLATION_METHODS`, each a config in ``configs/train/``) with the project's own
   training command, into ``DIR/train/<run>/``. A finished run (its ``method.yaml`` written) is reused; a killed one
   resumes from its last checkpoint. At demo scale each run is the demo DifIISR recipe with that run's guidance
   terms (``configs/reproduce.yaml``). Before training, the device-hours the trainings will take are printed,
   measured on this device (a few timed iterations of every run left to train).
2. **Register** each finished run as a method by itself: ``DIR/train`` goes on ``$IRSR_RUNS_DIR``, where the
   registry finds ``<run>/method.yaml`` (:mod:`sr.train.run_method`).
3. **Evaluate** with the main job (:func:`benchmarks.run.main`) into ``DIR/run/``: the method tables' methods plus
   the runs, on the data sets the tables need, per suite; its cache makes a rerun compute only what is missing. At
   demo scale the synthetic suite stands in for the paper's data sets and every row is flagged ``demo_stand_in``.
4. **Report**: ``DIR/report/paper/`` (:func:`reports.paper.build_paper_report`), every table as paper | ours | Δ.

The main job also measures the efficiency table of its methods (``--efficiency``: parameters, FLOPs, latency, peak
memory; ``DIR/run/efficiency.csv``), which the paper report renders beside the papers' own numbers.

``DIR`` is claimed the way every command claims its output folder (:mod:`sr.ownership`: its manifest lists
``train/``, ``run/``, ``report/`` and ``datasets/``); a folder of someone else's files is refused.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sr import cli
from sr.atomic import atomic_path, atomic_write_text
from sr.cli import cli_entry
from sr.config import CONFIG_DIR, read_config, read_yaml
from sr.errors import UserError
from sr.ownership import add_overwrite_option, claim_folder
from sr.vocab import (
    COL_DATASET,
    COL_FLAGS,
    ENV_RUNS_DIR,
    FLAG_DEMO_STAND_IN,
    OPT_DEVICE,
    OPT_EFFICIENCY,
    OPT_WEIGHTS_DIR,
    join_flags,
    split_flags,
)

SCALES = ("demo", "paper")
#: what the command writes in its --out folder (sr.ownership: only these are ever replaced there)
REPRODUCE_ENTRIES = ("train/", "run/", "report/", "datasets/")
#: the other reading of supplementary Tables 2/3 (docs/reproduce.md): the swapped guidance with the other one kept
KEEP_OTHER = {
    "difiisr_s2_ssim": "difiisr_s2_ssim_keep_perceptual",
    "difiisr_s2_mse": "difiisr_s2_mse_keep_perceptual",
    "difiisr_s3_lpips": "difiisr_s3_lpips_keep_visual",
    "difiisr_s3_edge": "difiisr_s3_edge_keep_visual",
}
#: guidance terms whose feature networks need pretrained weights (random offline at demo scale)
PRETRAINED_TERMS = {"vgg", "sam", "lpips"}


def table_keys() -> list[str]:
    from reports.paper_tables import TABLES

    return [t.key for t in TABLES]


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=SCALES, required=True, help="demo: offline, 2 CPU cores; paper: GPUs + data")
    p.add_argument("--out", type=cli.dir_path, required=True, help="folder of the trainings, the run and the report")
    p.add_argument(
        "--only", type=cli.names_from(table_keys()), default=None, help="comma-separated tables (default: all)"
    )
    p.add_argument(
        "--iterations",
        type=cli.positive_int,
        default=None,
        help="training iterations of every run (default: its config's)",
    )
    p.add_argument(
        "--supp-reading",
        choices=("default", "keep_other"),
        default="default",
        help="supplementary Tables 2/3: default = the swapped guidance alone (what the paper's numbers support); "
        "keep_other = with the other guidance kept (docs/reproduce.md)",
    )
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="the main job's executor")
    p.add_argument("--ray-address", default=None, help="Ray cluster address for --executor ray")
    p.add_argument("--no-estimate", action="store_true", help="do not time a few iterations for the estimate")
    p.add_device()
    p.add_weights_dir()
    add_overwrite_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


# ----------------------------------------------------------------------------------------------------------- plan
def scale_config(scale: str) -> dict[str, Any]:
    return read_yaml(CONFIG_DIR / "reproduce.yaml")[scale]


def needed_runs(tables: list[str], supp_reading: str = "default") -> dict[str, str]:
    """{run (method) name: training config} of the ablation rows of ``tables`` (one run per distinct name)."""
    from reports.paper_tables import ABLATION_METHODS, TABLES, paper_numbers
    from sr.train.config import TRAIN_CONFIGS

    pn = paper_numbers()
    runs: dict[str, str] = {}
    for spec in TABLES:
        if spec.key not in tables or not spec.ablation:
            continue
        for row in dict.fromkeys(pn[pn.table == spec.key]["row"]):
            name = next((m for m in ABLATION_METHODS.get(row, ()) if m in TRAIN_CONFIGS), None)
            if name is None:
                raise UserError(f"{spec.key} row {row!r}: none of {ABLATION_METHODS.get(row)} is a training config")
            runs[name] = KEEP_OTHER.get(name, name) if supp_reading == "keep_other" else name
    return runs


def resolved_config(scale: str, run: str, config: str, iterations: int | None) -> dict[str, Any]:
    """The training config of ``run`` at ``scale`` as one self-contained mapping (no ``base``)."""
    from sr.train.config import TRAIN_CONFIGS

    data = read_config(TRAIN_CONFIGS.path(config))
    sc = scale_config(scale)
    if sc.get("recipe"):  # demo: the recipe's everything, the run's guidance terms
        terms = ((data.get("objective") or {}).get("guidance") or {}).get("terms") or []
        data = read_config(TRAIN_CONFIGS.path(sc["recipe"]))
        options = sc.get("term_options") or {}
        terms = [{**t, **options.get(t.get("kind"), {})} for t in terms]
        data["objective"]["guidance"]["terms"] = terms
        if any(t.get("kind") in PRETRAINED_TERMS for t in terms):
            data["random_weights"] = True
    data.pop("description", None)
    data["name"] = run
    data["train"] = dict(data.get("train") or {})
    if iterations:
        data["train"]["iterations"] = iterations
    total = int(data["train"].get("iterations", 1000))
    data["train"].setdefault("save_every", max(1, total // 10))  # a killed run loses at most a tenth
    data["train"]["progress"] = False
    return data


# ------------------------------------------------------------------------------------------------------- training
def _finished(folder: Path, config_text: str) -> bool:
    """A run is finished when it wrote its method.yaml under the same resolved config."""
    from sr.registry import RUN_METHOD_FILE

    saved = folder / "resolved.yaml"
    return (folder / RUN_METHOD_FILE).is_file() and saved.is_file() and saved.read_text() == config_text


def train_runs(plan: dict[str, dict[str, Any]], train_dir: Path, args) -> list[str]:
    """Train (or resume, or reuse) every run of ``plan``; returns the names trained now."""
    import torch

    from sr.train.trainer import TRAIN_KIND

    todo = []
    for run, data in plan.items():
        folder = train_dir / run
        text = yaml.safe_dump(data, sort_keys=False)
        if _finished(folder, text):
            print(f"[reproduce] {run}: finished earlier, reused", flush=True)
            continue
        saved = folder / "resolved.yaml"
        if saved.is_file() and saved.read_text() != text:
            raise UserError(
                f"{folder} holds run {run} trained with another config ({saved}); use another --out or remove that "
                "run folder"
            )
        # the run folder is claimed as a training run (its config beside what the trainer will write), so the
        # trainer, which refuses folders it did not make, takes it over
        claim_folder(folder, TRAIN_KIND, (saved.name,))
        atomic_write_text(saved, text)
        todo.append(run)
    if todo and not args.no_estimate:
        estimate(plan, todo, train_dir, args)
    gpus = torch.cuda.device_count() if args.device in ("auto", "cuda") else 0
    for run in todo:
        folder = train_dir / run
        argv = ["--config", str(folder / "resolved.yaml"), "--out", str(folder), "--resume", OPT_DEVICE, args.device]
        if args.weights_dir:
            argv += [OPT_WEIGHTS_DIR, str(args.weights_dir)]
        step = _checkpoint_step(folder)
        resume = f", resuming at step {step}" if step else ""
        print(f"[reproduce] training {run} ({plan[run]['train']['iterations']} iterations{resume})", flush=True)
        if gpus > 1:  # one process per GPU (DDP), as the training docs say
            import subprocess

            cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", "-m", "sr.train", *argv]
            code = subprocess.call(cmd)
        else:
            from sr.train.__main__ import main as train_main

            code = train_main(argv)
        if code != 0:
            raise UserError(f"training {run} failed (exit {code}); rerun the same command to resume it")
    return todo


def estimate(plan: dict[str, dict[str, Any]], todo: list[str], train_dir: Path, args) -> float:
    """Time a few iterations of every run left to train on this device (each in a scratch folder: the guidance
    terms, which differ between runs, set the cost of an iteration) and print the device-hours the remaining
    iterations need at those speeds; returns the hours."""
    import torch

    hours, remaining, device = 0.0, 0, "cpu"
    for run in todo:
        left = max(0, int(plan[run]["train"]["iterations"]) - _checkpoint_step(train_dir / run))
        per_iteration, device = _time_iterations(plan[run], args)
        print(f"[reproduce] estimate: {run}: {per_iteration:.3f} s per iteration, {left} left", flush=True)
        remaining += left
        hours += left * per_iteration / 3600
    gpus = max(1, torch.cuda.device_count()) if device.startswith("cuda") else 1
    print(
        f"[reproduce] estimate: {len(todo)} training run(s), {remaining} iterations left, each run's iterations "
        f"timed on {device} (median of {_TIMED} after {_WARM}) = {hours:.2f} device-hours"
        + (f" ({hours / gpus:.2f} h on {gpus} GPUs)" if gpus > 1 else "")
        + " (set-up and validation not included)",
        flush=True,
    )
    return hours


_WARM, _TIMED = 1, 3


def _time_iterations(data: dict[str, Any], args) -> tuple[float, str]:
    """Median seconds of one training iteration of the config ``data`` (built in a scratch folder), and the device."""
    from benchmarks.speed.timing import time_calls
    from sr.train.config import load_config
    from sr.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="irsr-estimate-") as scratch:
        path = Path(scratch) / "config.yaml"
        data = {**data, "train": {**data["train"], "tensorboard": False, "val_every": 0, "save_every": 0}}
        path.write_text(yaml.safe_dump(data))
        # the run folder must not exist yet: the trainer claims only folders it makes (sr.ownership)
        overrides = {
            "out_dir": str(Path(scratch) / "run"),
            **({"weights_dir": str(args.weights_dir)} if args.weights_dir else {}),
        }
        trainer = Trainer(load_config(path, overrides), device=args.device)
        seconds = time_calls(trainer.train_step, trainer.device, warmup=_WARM, repeat=_TIMED).median_ms / 1e3
        return seconds, str(trainer.device)


def _checkpoint_step(folder: Path) -> int:
    ckpt = folder / "ckpt" / "last.pt"
    if not ckpt.is_file():
        return 0
    from sr.checkpoint import load_checkpoint

    return int(load_checkpoint(ckpt).get("step", 0))


# ----------------------------------------------------------------------------------------------------- evaluation
def evaluation_jobs(scale: str, tables: list[str], runs: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """{suite: (data sets, methods)} the selected tables need."""
    from reports.paper_tables import DEFAULT_DATASETS, TABLES

    sc = scale_config(scale)
    mapping = {**DEFAULT_DATASETS, **(sc.get("datasets") or {})}
    specs = [t for t in TABLES if t.key in tables]
    labels = {c.dataset for t in specs for c in t.columns}
    method_tables = any(not t.ablation for t in specs)
    methods = ["all"] if sc["methods"] == "all" else list(sc["methods"])
    jobs = {}
    for suite, suite_labels in sc["suites"].items():
        datasets = list(dict.fromkeys(mapping[label] for label in suite_labels if label in labels))
        if not datasets:
            continue
        wanted = (methods if method_tables else []) + runs
        if wanted == ["all"] + runs:
            from sr.registry import list_methods

            wanted = list_methods()  # every registered method, the runs (now on IRSR_RUNS_DIR) included
        jobs[suite] = (datasets, list(dict.fromkeys(wanted)))
    return jobs


def with_channels(datasets: list[str], channels: int | None, folder: Path) -> list[str]:
    """The data sets read with ``channels`` (3: the outputs scored in 3 channels, as the official evaluation does):
    ``folder/<name>.yaml`` = the data set's YAML (``base:``) with ``channels`` set, rows still named ``<name>``."""
    if not channels:
        return datasets
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in datasets:
        path = folder / f"{name}.yaml"
        entry = {"base": str(CONFIG_DIR / "datasets" / f"{name}.yaml"), "name": name, "channels": channels}
        atomic_write_text(path, yaml.safe_dump(entry, sort_keys=False))
        out.append(str(path))
    return out


def evaluate(jobs: dict[str, tuple[list[str], list[str]]], run_dir: Path, args, channels: int | None = None) -> Path:
    from benchmarks.run import main as run_main

    for suite, (datasets, methods) in jobs.items():
        datasets = with_channels(datasets, channels, run_dir.parent / "datasets")
        argv = ["--suite", suite, "--datasets", ",".join(datasets), "--methods", ",".join(methods)]
        argv += ["--out", str(run_dir), "--no-report", OPT_DEVICE, args.device, "--executor", args.executor]
        argv.append(OPT_EFFICIENCY)
        if args.ray_address:
            argv += ["--ray-address", args.ray_address]
        if args.weights_dir:
            argv += [OPT_WEIGHTS_DIR, str(args.weights_dir)]
        if args.quiet:
            argv.append("--quiet")
        names = ", ".join(Path(d).stem for d in datasets)
        print(f"[reproduce] evaluating {len(methods)} methods on {names} (suite {suite})", flush=True)
        code = run_main(argv)
        if code != 0:
            raise UserError(f"the evaluation (python -m benchmarks.run {' '.join(argv)}) failed (exit {code})")
    return run_dir / "results.csv"


def flag_stand_in(results_csv: Path, datasets: set[str]) -> None:
    """Add the ``demo_stand_in`` flag to every row of ``datasets`` (idempotent; written atomically)."""
    from reports.tables import load_results

    df = load_results(results_csv)  # read as every consumer reads it (class names stay text: "01" is not 1)
    rows = df[COL_DATASET].isin(datasets)
    df.loc[rows, COL_FLAGS] = [join_flags(split_flags(f) | {FLAG_DEMO_STAND_IN}) for f in df.loc[rows, COL_FLAGS]]
    with atomic_path(results_csv) as tmp:
        df.to_csv(tmp, index=False)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    started = time.time()
    out = Path(args.out).expanduser().resolve()
    tables = args.only or table_keys()
    runs = needed_runs(tables, args.supp_reading)
    plan = {run: resolved_config(args.scale, run, config, args.iterations) for run, config in runs.items()}
    from sr.train.config import load_config
    from sr.train.run_method import check_sampling

    claim_folder(cli.check_writable_dir(out), "reproduction", REPRODUCE_ENTRIES, overwrite=args.overwrite)
    train_dir = out / "train"
    train_dir.mkdir(exist_ok=True)
    for data in plan.values():  # every config checked (types, sampler vs objective) before any training
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=train_dir) as fh:
            fh.write(yaml.safe_dump(data))
            fh.flush()
            check_sampling(load_config(fh.name))
    os.environ[ENV_RUNS_DIR] = os.pathsep.join(filter(None, [str(train_dir), os.environ.get(ENV_RUNS_DIR, "")]))
    train_runs(plan, train_dir, args)
    jobs = evaluation_jobs(args.scale, tables, list(plan))
    sc = scale_config(args.scale)
    results = evaluate(jobs, out / "run", args, sc.get("channels"))
    if sc.get("stand_in"):
        flag_stand_in(results, {d for datasets, _ in jobs.values() for d in datasets})
    from reports.paper import build_paper_report

    report = build_paper_report(
        results,
        out / "report" / "paper",
        datasets=sc.get("datasets") or None,
        qualitative=args.scale == "paper",
        device=args.device,
    )
    print(f"[reproduce] report: {report} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
