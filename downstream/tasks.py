"""Downstream tasks as plugins: the contract between the runner, the reports and a task.

A task is one module holding a :class:`Task` subclass plus one YAML in ``configs/tasks/`` (``factory`` +
``options``); a suite maps a task key (the ``task`` column of results.csv) to such a YAML. The class declares
everything the rest of the harness needs, so that benchmarks/ and reports/ never name a task:

* ``labels``: the :class:`~downstream.sample.Sample` fields it reads (``LABEL_FIELDS``); its class names are
  the data set's classes of the first one (:meth:`Task.dataset_classes`); it applies where the data set has them;
* ``metrics``: its result rows (:class:`ResultMetric`: name, higher or lower better, per class or overall);
* ``report``: the per-class metric of the report's tables and radar plots, the overall metric of the radar's
  extra axis, and the caption of its qualitative figure (drawn by :meth:`Task.figure`).

The runner hands :meth:`Task.evaluate` one :class:`TaskItem` per SR frame and gets :class:`MetricRow` s back.
Rows with ``image`` set are per-image values: they are cached with the others but go to
``<out>/per_image/<data set>__<method>__<task>.csv`` instead of results.csv. A task that also returns a
per-image state from :meth:`Task.evaluate_with_state` gets bootstrap intervals and paired tests for its rows:
:meth:`Task.replicates` recomputes them from that state on resampled image lists, without the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from downstream.errors import DataError
from downstream.sample import LABEL_FIELDS
from sr.errors import ConfigError
from sr.registry import Registry
from sr.vocab import CLASS_ALL

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in HR pixels


@dataclass(frozen=True)
class TaskItem:
    """One SR frame for a task: ``labels`` holds the sample's fields named in the task's ``labels``."""

    id: str
    image: Path  # SR output (or HR / LR for the reference rows), 8-bit PNG
    labels: Mapping[str, Any] = field(default_factory=dict)

    def label(self, name: str) -> Any:
        """The label ``name`` of this frame; a DataError naming the frame when it has none."""
        value = self.labels.get(name)
        if value is None:
            raise DataError(f"{self.image}: frame {self.id!r} has no {name!r} label")
        return value


@dataclass(frozen=True)
class MetricRow:
    metric: str  # e.g. "mAP50-95", "IoU"
    value: float
    cls: str = CLASS_ALL  # class name, or "all" for the overall value
    n: int = 0  # number of images the value is computed over
    image: str = ""  # a per-image value: the sample id (kept out of results.csv)
    flags: tuple[str, ...] = ()  # this row's own flags (e.g. a class absent from training), besides the task's


@dataclass(frozen=True)
class ResultMetric:
    """One metric a task reports."""

    name: str
    higher_better: bool = True
    per_class: bool = False  # rows per class besides the "all" row
    label: str = ""  # short name in tables and axes (default: ``name``)


@dataclass(frozen=True)
class TaskReport:
    """What the report shows of a task."""

    per_class: str  # metric of the per-class table and the radar axes
    overall: str = ""  # metric of the radar's overall axis ("" = none)
    overall_label: str = ""  # that axis' label (default: ``overall``)
    figure: str = ""  # caption of the qualitative figure ("" = the task draws none)


class Task(ABC):
    """A downstream task evaluated on SR outputs (see the module doc)."""

    name: str = ""
    labels: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[ResultMetric, ...]] = ()
    report: ClassVar[TaskReport | None] = None
    libraries: ClassVar[tuple[str, ...]] = ("torch",)  # distributions that compute the rows (in their cache key)

    def dataset_classes(self, dataset: Any) -> tuple[str, ...] | None:
        """Class names of the task's first label in ``dataset``; None when the data set lacks that label."""
        if not self.labels:
            return ()
        classes = dataset.classes(self.labels[0])
        return None if classes is None else tuple(classes)

    def applicable(self, dataset: Any) -> bool:
        """Whether the data set carries every label this task needs."""
        return all(dataset.classes(label) is not None for label in self.labels)

    @abstractmethod
    def evaluate(self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path) -> list[MetricRow]:
        """Evaluate on every item; ``workdir`` is a private scratch directory."""

    def check_classes(self, class_names: tuple[str, ...]) -> None:
        """Raise a one-line UserError when the task's model cannot score a data set with these classes (the
        runner calls it before any work, so a mismatch is one ``error:`` line); the default accepts any."""
        return

    def evaluate_with_state(
        self, items: list[TaskItem], class_names: tuple[str, ...], workdir: Path
    ) -> tuple[list[MetricRow], Any]:
        """:meth:`evaluate` plus the per-image state (JSON-serialisable) from which :meth:`replicates` recomputes
        the rows on resampled image lists without the model; None (the default) gives the rows no interval."""
        return self.evaluate(items, class_names, workdir), None

    @classmethod
    def replicates(cls, state: Any, draws: Any) -> dict[tuple[str, str], Any]:
        """(metric, class) -> the row's value recomputed on each drawn list of image ids (``draws``: [R, n]
        array of ids, with repeats; ids the state lacks are left out of a draw). Model-free: the bootstrap
        intervals and paired tests of the rows (downstream.bootstrap) come from here."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What this task's result rows depend on (model weights hash, evaluation settings)."""
        return {"name": self.name}

    @property
    def flags(self) -> tuple[str, ...]:
        return ()

    def figure(
        self, images: dict[str, Path], crop: Box, truth: Mapping[str, Any], class_names: tuple[str, ...], workdir: Path
    ) -> Any:
        """The task's qualitative figure as a PIL image: one panel per (label, image) cropped to ``crop``, with
        the frame's ground truth ``truth`` (label field -> value); ``workdir`` is scratch space. The report
        titles and saves it. Only called when ``report.figure`` is set."""
        raise NotImplementedError(f"task {self.name!r} draws no figure")

    @classmethod
    def spec(cls) -> dict[str, Any]:
        """The declarations as plain data (recorded in run.json for the reports)."""
        return {
            "labels": list(cls.labels),
            "metrics": [asdict(m) for m in cls.metrics],
            "report": asdict(cls.report) if cls.report else None,
        }


def draw_positions(ids: list[str], draws: Any) -> Any:
    """(R, m) int64 array: the position in ``ids`` of each drawn id of ``draws`` (:meth:`Task.replicates`), -1 for an
    id not in ``ids`` (left out of its draw)."""
    import numpy as np

    draws = np.asarray(draws, dtype=str).reshape(len(draws), -1)
    names = np.asarray(ids, dtype=str).reshape(-1)
    order = np.argsort(names, kind="stable")
    at = np.minimum(np.searchsorted(names[order], draws), max(len(names) - 1, 0))
    if not len(names):
        return np.full(draws.shape, -1, np.int64)
    return np.where(names[order][at] == draws, order[at], -1).astype(np.int64)


def task_report(spec: Mapping[str, Any] | None) -> tuple[tuple[ResultMetric, ...], TaskReport | None]:
    """The metrics and report of a task from its recorded :meth:`Task.spec` (None: nothing declared)."""
    if not spec:
        return (), None
    metrics = tuple(ResultMetric(**m) for m in spec.get("metrics") or ())
    report = spec.get("report")
    return metrics, (TaskReport(**report) if report else None)


#: task configs: ``configs/tasks/<name>.yaml`` (or a .yaml path) = ``factory`` (a Task subclass) + ``options``
TASKS = Registry("task config", configs="tasks", keys={"options"}, required=("factory",), plugin_kind="task")


def task_class(config: str) -> type[Task]:
    """The Task subclass that task config ``config`` builds (imported, not instantiated); the config's options
    are checked against it too, so a typo is a ConfigError before any work starts."""
    cls = TASKS.get(config).factory
    path = TASKS.where(config)  # its YAML, or the module that registered it (sr.plugins)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"{path}: task factory {cls!r} is not a Task subclass")
    unknown = set(cls.labels) - set(LABEL_FIELDS)
    if unknown:
        raise ConfigError(
            f"{path}: task {cls.__name__} needs labels {sorted(unknown)} that no sample has "
            f"(sample labels: {', '.join(LABEL_FIELDS)})"
        )
    from sr.config import check_options
    from sr.registry import COMMON_OPTIONS

    options = TASKS.config(config).get("options") or {}
    check_options(
        f"options of task config {config!r}", cls, {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
    )
    return cls


def load_task(config: str, **common: Any) -> Task:
    """Build the task described by task config ``config`` (``factory`` + ``options``).

    ``common`` carries runner-wide settings every task accepts: ``device``, ``weights_dir``,
    ``random_weights``. The task YAML may set them too: ``random_weights: true`` there holds whatever the command
    line says (either asks for it), ``device`` / ``weights_dir`` there apply where the caller passes none. A
    ``weights`` path in a task YAML (one with a ``/`` or a weights-file suffix) names a file beside the YAML when
    there is one (``RUN/task.yaml`` says ``weights: detector.pt``), so a run folder can be moved or shared.
    """
    task_class(config)
    yaml_options = dict(TASKS.config(config).get("options") or {})
    common = dict(common)
    if yaml_options.get("random_weights"):
        common["random_weights"] = True
    for key in ("device", "weights_dir"):
        if common.get(key) is None and yaml_options.get(key) is not None:
            common[key] = yaml_options[key]
    weights = yaml_options.get("weights")
    task_yaml = None if TASKS.python_entry(config) else TASKS.path(config)  # a plug-in task has no YAML
    if task_yaml and isinstance(weights, str) and _is_path(weights) and not Path(weights).expanduser().is_absolute():
        beside = task_yaml.parent.absolute() / weights
        if beside.is_file():  # else as before: a path from the working directory / repository (configs/tasks)
            yaml_options["weights"] = str(beside)
    options = {k: v for k, v in yaml_options.items() if k not in common}
    return TASKS.build(config, options, untyped=common)


#: suffixes of weights files (a task YAML's ``weights`` with one of them is a path, not a registry name)
WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt", ".bin")


def _is_path(value: str) -> bool:
    return "/" in value or Path(value).suffix.lower() in WEIGHTS_SUFFIXES


def task_yaml_path(run_dir: Path, weights: Path) -> str:
    """How ``RUN/task.yaml`` names ``weights``: relative to ``run_dir`` when inside it (the folder can move),
    else absolute."""
    weights, run_dir = Path(weights).absolute(), Path(run_dir).absolute()
    return weights.relative_to(run_dir).as_posix() if weights.is_relative_to(run_dir) else str(weights)
