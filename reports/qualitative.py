"""Qualitative figures (the paper's Figures 3, 4, 5): the same crop of the same frame for every method.

SR images come from the run the results.csv belongs to: ``<run>/sr_outputs/<data set>__<method>.csv``
(``dataset,method,id,path``, path relative to the run; written by the runner). Without them the figures are
skipped with the reason.

* Figure 3: the crop of every method's SR image (nearest-neighbour), per data set.
* Figures 4, 5, ...: one per task of the run that draws a figure (``Task.figure``, e.g. detections or predicted
  masks on the same crop; numbered in the order of ``run.json["tasks"]``), for every data set with results of
  that task.

The task figures rebuild each task from ``<run>/run.json``: ``tasks`` (task -> config in ``configs/tasks``,
loaded with ``downstream.tasks.load_task``), ``weights_dir`` and ``random_weights``. Without run.json, or when
the weights are missing, they are skipped with the reason. When ``run.json`` recorded the task's identity
(weights sha256) and today's differs, the caption says so. Methods whose image is not at the HR size (the ``lr``
row) are left out of the task figures, as the tasks only score HR-size outputs.

Which frame and crop (the same for the three figures of a data set):

* ``frame``: the user's (``--frame ID``), else the frame (among the first ``MAX_SCAN`` sorted ones every method
  has) with the most ground-truth boxes, read from the data set (``downstream.datasets.load_dataset``); when the
  data set cannot be loaded or has no boxes, the first frame;
* ``crop`` (x1, y1, x2, y2 in HR pixels): the user's (``--crop``), else a square window of side
  ``max(crop_size, min(H, W) // 3)`` around the largest box cluster: for each box, the boxes whose centres fall
  in the window centred on it; the box with the most (ties: the larger summed box area) wins and the window is
  centred on the bounding box of its cluster, clamped to the image; with no boxes, the centre crop.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from downstream.sample import LABEL_BOXES, LABEL_FIELDS  # noqa: E402
from downstream.tasks import TaskReport, task_report  # noqa: E402
from reports.escape import file_stem, plain_text_figures, xml_text  # noqa: E402
from reports.figure_files import save_figure  # noqa: E402
from reports.html import data_uri  # noqa: E402
from reports.paper_tables import paper_label  # noqa: E402
from reports.tables import marked  # noqa: E402
from reports.tasks import task_reports  # noqa: E402
from sr.vocab import COL_DATASET, COL_ERROR, COL_FLAGS, COL_METHOD, COL_TASK, COL_VALUE, split_flags  # noqa: E402

plain_text_figures()  # method and class names in the figures are data: no mathtext

log = logging.getLogger(__name__)

CROP = 96  # minimum crop side in HR pixels
MAX_METHODS = 16  # per grid
MAX_SCAN = 200  # frames read from the data set to find the one with most boxes
DPI = 110  # Figure 3 grids (image_grid, image_rows)

Box = tuple[int, int, int, int]
_NO = TaskReport(per_class="")  # a task that declares no report: no figure


def sr_index(run_dir: str | Path) -> pd.DataFrame:
    """dataset, method, id, path (absolute) for every SR frame the run recorded. Only files inside the run
    folder are listed: an index line naming a path elsewhere (absolute, or ``..``) is skipped with a warning,
    so a report never draws a file from outside its run."""
    run_dir = Path(run_dir).resolve()
    rows = []
    for f in sorted((run_dir / "sr_outputs").glob("*.csv")):
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh):
                path = (run_dir / (r.get("path") or "")).resolve()
                if not r.get("path") or not path.is_relative_to(run_dir):
                    logging.getLogger("reports").warning(
                        "%s: ignoring %r (not a file of the run folder %s)", f, r.get("path"), run_dir
                    )
                    continue
                rows.append({**r, "path": str(path)})
    return pd.DataFrame(rows, columns=["dataset", "method", "id", "path"])


def _crop_box(shape: tuple[int, int], size: int) -> Box:
    """Centre square of side ``size`` (x1, y1, x2, y2)."""
    h, w = shape
    size = min(size, h, w)
    y0, x0 = (h - size) // 2, (w - size) // 2
    return x0, y0, x0 + size, y0 + size


def crop_side(shape: tuple[int, int], crop_size: int = CROP) -> int:
    return min(max(crop_size, min(shape) // 3), *shape)


def cluster_crop(boxes: np.ndarray | None, shape: tuple[int, int], crop_size: int = CROP) -> Box:
    """Square window around the largest box cluster (see the module doc); the centre crop without boxes."""
    h, w = shape
    side = crop_side(shape, crop_size)
    b = np.asarray(boxes if boxes is not None else np.zeros((0, 5)), dtype=float).reshape(-1, 5)[:, 1:]
    if not len(b):
        return _crop_box(shape, side)
    centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    best, best_score = None, None
    for c in centres:
        inside = np.all(np.abs(centres - c) <= side / 2, axis=1)
        score = (int(inside.sum()), float(areas[inside].sum()))
        if best_score is None or score > best_score:
            best, best_score = inside, score
    members = b[best]
    cx = (members[:, 0].min() + members[:, 2].max()) / 2
    cy = (members[:, 1].min() + members[:, 3].max()) / 2
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    return x0, y0, x0 + side, y0 + side


def _cropped(images: list[tuple[str, Path]], crop: int | Box | None) -> list[tuple[str, np.ndarray]]:
    """(label, the same crop of each image): an int is the centre square of that side, a box x1, y1, x2, y2 in the
    largest (HR-size) image's pixels, None the whole image; a smaller image (the LR row) is nearest-upsampled to the
    HR frame first."""
    loaded = []
    for label, p in images:
        with Image.open(p) as im:
            loaded.append((label, np.asarray(im.convert("RGB"))))
    ref_shape = max((arr.shape[:2] for _, arr in loaded), key=lambda hw: hw[0] * hw[1])  # the HR-size frame
    if crop is None:
        crop = (0, 0, ref_shape[1], ref_shape[0])
    x0, y0, x1, y1 = _crop_box(ref_shape, crop) if isinstance(crop, int) else crop
    if x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0 or x1 > ref_shape[1] or y1 > ref_shape[0]:
        raise ValueError(f"crop {(x0, y0, x1, y1)} is not inside the {ref_shape[1]}x{ref_shape[0]} frame")
    out = []
    for label, arr in loaded:
        if arr.shape[:2] != ref_shape:
            arr = np.asarray(Image.fromarray(arr).resize(ref_shape[::-1], Image.NEAREST))
        out.append((label, arr[y0:y1, x0:x1]))
    return out


def image_grid(images: list[tuple[str, Path]], crop: int | Box | None, title: str, stem: Path) -> list[Path]:
    """One panel per (label, image): the same crop of each (:func:`_cropped`), nearest-neighbour, PNG + SVG."""
    panels = _cropped(images, crop)
    n = len(panels)
    h, w = panels[0][1].shape[:2]
    cols = min(n, 6 if w <= 200 else 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * h / w * rows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (label, arr) in zip(axes.ravel(), panels):
        ax.imshow(arr, interpolation="nearest")
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem, dpi=DPI)


def image_rows(rows: list[tuple[str, list[tuple[str, Path]], Box]], title: str, stem: Path) -> list[Path]:
    """One row per (row label, [(label, image)], crop), one column per label (the same labels in every row): the
    paper's Figure 3, one frame of each data set with every method beside it. PNG + SVG."""
    panels = [(name, _cropped(images, crop)) for name, images, crop in rows]
    cols = max(len(p) for _, p in panels)
    fig, axes = plt.subplots(len(panels), cols, figsize=(2.2 * cols, 2.3 * len(panels) + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (name, row) in enumerate(panels):
        for c, (label, arr) in enumerate(row):
            ax = axes[r, c]
            ax.imshow(arr, interpolation="nearest")
            ax.set_title(label if r == 0 else "", fontsize=9)
        axes[r, 0].text(-0.05, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, ha="right", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem, dpi=DPI)


TITLE_BAND = 40  # px above a picture in its SVG, for the title


def _picture(image: Image.Image, title: str, stem: Path) -> list[Path]:
    """A ready-made picture (PIL) as PNG (lossless, as drawn) + SVG: the title (escaped: it holds names from the data)
    above the PNG's own bytes as a data URI, the same pixels, not drawn or encoded again."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    image.save(png)
    w, h = image.size
    total = h + TITLE_BAND
    svg.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" '
        f'width="{w}" height="{total}" viewBox="0 0 {w} {total}">\n'
        f'<text x="{w / 2:g}" y="{TITLE_BAND * 0.65:g}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" '
        f'font-size="14">{xml_text(title)}</text>\n'
        f'<image x="0" y="{TITLE_BAND}" width="{w}" height="{h}" style="image-rendering:pixelated" '
        f'xlink:href="{data_uri(png)}"/>\n'
        "</svg>\n",
        encoding="utf-8",
    )
    return [png, svg]


@dataclass
class View:
    """What a data set's qualitative figures show."""

    frame: str
    crop: Box
    how: str  # how frame and crop were chosen (caption)
    boxes: np.ndarray | None = None  # ground truth boxes of the frame, HR pixels
    truth: dict[str, Any] | None = None  # every label of the frame (label field -> value)
    dataset: Any = None  # the loaded data set (class names) or None


def _load_dataset(name: str):
    try:
        from downstream.datasets import load_dataset

        return load_dataset(name)
    except Exception as exc:  # not on this machine, unknown name, ...
        log.info("data set %s not loadable for the qualitative figures: %s", name, exc)
        return None


def choose_view(
    ds: str,
    frames: list[str],
    shape_of: Callable[[str], tuple[int, int]],
    crop_size: int = CROP,
    frame: str | None = None,
    crop: Box | None = None,
    source: str | None = None,
    avoid: set[str] | frozenset[str] = frozenset(),
) -> View:
    """Frame and crop for data set ``ds`` (see the module doc); ``shape_of(frame)`` -> (H, W) of its HR image.
    ``source`` is what to load the data set from when it is not ``ds`` (a data-set YAML path, run.json's
    ``dataset_files``). ``avoid``: frames not to choose (already shown), unless there is no other."""
    frames = [f for f in frames if f not in avoid] or frames
    dataset = _load_dataset(source or ds)
    samples: dict[str, Any] = {}

    def sample(fid):
        if dataset is None:
            return None
        if fid not in samples:
            try:
                samples[fid] = dataset.load(fid)
            except Exception as exc:
                log.info("%s/%s not readable: %s", ds, fid, exc)
                samples[fid] = None
        return samples[fid]

    def n_boxes(fid):
        s = sample(fid)
        return 0 if s is None or s.boxes is None else len(s.boxes)

    if frame is not None:
        how_frame = "frame chosen by the user"
    elif dataset is not None and dataset.classes(LABEL_BOXES) is not None:
        counts = {f: n_boxes(f) for f in sorted(frames)[:MAX_SCAN]}
        frame = next(iter(counts))
        for f, n in counts.items():  # most boxes, the first (sorted) on ties
            if n > counts[frame]:
                frame = f
        how_frame = f"the frame with most boxes ({counts[frame]})"
    else:
        frame = sorted(frames)[0]
        how_frame = "first frame (no boxes known)"
    s = sample(frame)
    boxes = None if s is None else s.boxes
    truth = {} if s is None else {f: getattr(s, f) for f in LABEL_FIELDS if getattr(s, f) is not None}
    if crop is not None:
        how_crop = f"crop {crop} chosen by the user"
    else:
        crop = cluster_crop(boxes, shape_of(frame), crop_size)
        how_crop = (
            f"crop {crop} around the largest box cluster" if boxes is not None and len(boxes) else f"centre crop {crop}"
        )
    return View(frame, tuple(int(v) for v in crop), f"{how_frame}; {how_crop}", boxes, truth, dataset)


def _task_datasets(df: pd.DataFrame, task: str) -> set[str]:
    ok = df[(df[COL_TASK] == task) & df[COL_VALUE].notna() & (df[COL_ERROR].astype(str) == "")]
    return set(ok[COL_DATASET].astype(str))


class _Tasks:
    """The run's tasks, once each (or the reason they cannot be): the run's own objects when the report is written by
    the run (``from_run``: task config -> the task or the exception building it raised), else rebuilt from run.json."""

    def __init__(self, meta: dict[str, Any], device: str, from_run: Callable[[str], Any] | None = None):
        self.meta, self.device, self._built, self._from_run = meta, device, {}, from_run

    def get(self, task: str) -> tuple[Any, str, str]:
        """(the task or None, why it cannot be built, a note when its identity changed since the run)."""
        if task not in self._built:
            config = (self.meta.get("tasks") or {}).get(task)
            if not config:
                self._built[task] = (None, f"run.json records no {task} task config", "")
            else:
                try:
                    t = self._build(config)
                    now = {"config": config, **t.identity()}  # a missing weights file: the reason now
                    note = ""
                    recorded = (self.meta.get("task_identities") or {}).get(task)
                    if recorded and "error" not in recorded:
                        if dict(recorded) != now:
                            note = f" (WARNING: {config} differs from the run's: weights or settings changed)"
                    self._built[task] = (t, "", note)
                except Exception as exc:
                    self._built[task] = (None, f"{task} task {config!r} cannot be built: {exc}", "")
        return self._built[task]

    def _build(self, config: str) -> Any:
        if self._from_run is not None:
            t = self._from_run(config)
            if isinstance(t, Exception):
                raise t
            return t
        from downstream.tasks import load_task

        return load_task(
            config,
            device=self.device,
            weights_dir=self.meta.get("weights_dir"),
            random_weights=bool(self.meta.get("random_weights")),
        )


def _run_meta(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """run.json and, when the task models cannot be known from it, the reason ("" when they can)."""
    from reports.runinfo import load_run_json

    try:
        meta = load_run_json(run_dir)
    except ValueError as exc:
        meta, meta_reason = None, f"run.json unreadable: {exc}"
    else:
        meta_reason = f"no run.json in {run_dir}" if meta is None else ""
    if meta is not None and "tasks" not in meta:  # an empty "tasks" is a quality-only run: nothing is missing
        meta_reason = "run.json records no task configs (an older run?)"
    return meta, meta_reason


class _Figures:
    """The figures of one run: what every data set's figures share, and what was made or skipped."""

    def __init__(
        self, run_dir: Path, df: pd.DataFrame, out_dir: Path, device: str, tasks: Callable[[str], Any] | None = None
    ):
        self.meta, self.meta_reason = _run_meta(run_dir)
        meta = self.meta or {}
        self.out_dir = out_dir
        self.tasks = _Tasks(meta, device, tasks)
        self.meta_reason_said = False
        # task -> figure number, for the run's tasks that draw one (the report spec recorded in run.json)
        specs = meta.get("task_specs") or {}
        self.figure_tasks = [t for t in meta.get("tasks") or {} if (task_report(specs.get(t))[1] or _NO).figure]
        self.numbers = {t: 4 + i for i, t in enumerate(self.figure_tasks)}
        self.task_sets = {t: _task_datasets(df, t) for t in self.figure_tasks}
        with_tasks = task_reports(df, self.meta)  # tasks with per-class results (all of them without run.json)
        self.task_datasets = set().union(*(_task_datasets(df, t) for t in with_tasks))
        self.all_numbers = "/".join(str(4 + i) for i in range(len(self.figure_tasks or with_tasks)))
        # the method's own caveats: the flags on every one of its rows (task / metric flags are the tables')
        self.caveats = {
            str(m): set.intersection(*map(split_flags, rows[COL_FLAGS])) for m, rows in df.groupby(COL_METHOD)
        }
        self.made: list[tuple[str, Path]] = []
        self.skipped: list[str] = []
        self.shown: dict[str, tuple] = {}  # data set -> what its Figure 3 showed (for the combined one)

    def dataset(self, ds: str, part: pd.DataFrame, crop_size: int, frame: str | None, crop: Box | None) -> None:
        """Figure 3 and the task figures of one data set (``part``: its rows of the SR image index)."""
        methods = list(dict.fromkeys(part.method))
        common = set.intersection(*(set(part[part.method == m].id) for m in methods))
        if not common:
            self.skipped.append(f"Figures 3/4/5 ({ds}): no frame that every method has")
            return
        if frame is not None and frame not in common:
            self.skipped.append(
                f"Figures 3/4/5 ({ds}): frame {frame!r} is not one every method has "
                f"(e.g. {', '.join(sorted(common)[:3])})"
            )
            return
        order = sorted(methods, key=lambda m: (m != "lr", m == "hr", m))[:MAX_METHODS]
        ref = "hr" if "hr" in order else order[-1]

        def path_of(m, f):
            return Path(part[(part.method == m) & (part.id == f)].path.iloc[0])

        def shape_of(f):
            with Image.open(path_of(ref, f)) as im:
                return im.height, im.width

        source = ((self.meta or {}).get("dataset_files") or {}).get(ds)
        view = choose_view(ds, sorted(common), shape_of, crop_size, frame, crop, source=source)
        label = {m: marked(paper_label(m), self.caveats.get(m, ())) for m in order}
        self.shown[ds] = (view, order, label, path_of, shape_of, sorted(common))
        name = file_stem(f"{ds}_{view.frame}")
        images = [(label[m], path_of(m, view.frame)) for m in order]
        try:
            paths = image_grid(images, view.crop, f"Figure 3: {ds} / {view.frame}", self.out_dir / f"fig3_{name}")
        except (OSError, ValueError) as exc:
            self.skipped.append(f"Figure 3 ({ds}): {exc}")
            return
        self.made.append((f"Figure 3 ({ds}, frame {view.frame}): the same crop for every method; {view.how}", paths[0]))
        # Figures 4/5: HR-size outputs only (the tasks score nothing else)
        ref_size = _size(path_of(ref, view.frame))
        same = [m for m in order if _size(path_of(m, view.frame)) == ref_size]
        left_out = [m for m in order if m not in same]
        note = f"; left out (not HR size): {', '.join(left_out)}" if left_out else ""
        if self.meta_reason:
            if ds in self.task_datasets:
                self.skipped.append(
                    f"Figures {self.all_numbers} ({ds}): {self.meta_reason}; the task models are not known"
                )
                self.meta_reason_said = True
            return
        imgs = {label[m]: path_of(m, view.frame) for m in same}
        for task in self.figure_tasks:
            if ds in self.task_sets[task]:
                self.task_figure(task, ds, view, name, imgs, note)

    def task_figure(self, task: str, ds: str, view: View, name: str, imgs: dict[str, Path], note: str) -> None:
        """One task's figure of one data set (``imgs``: label -> the HR-size SR image of the view's frame)."""
        fig_no = self.numbers[task]
        t, reason, changed = self.tasks.get(task)
        if t is None:
            self.skipped.append(f"Figure {fig_no} ({ds}): {reason}")
            return
        stem = self.out_dir / f"fig{fig_no}_{name}"
        try:
            classes = None if view.dataset is None else t.dataset_classes(view.dataset)
            picture = t.figure(imgs, view.crop, view.truth or {}, classes or (), stem.parent / (stem.name + "_parts"))
            paths = _picture(picture, f"Figure {fig_no}: {task}, {ds} / {view.frame}", stem)
        except Exception as exc:
            log.warning("Figure %d (%s) failed", fig_no, ds, exc_info=True)
            self.skipped.append(f"Figure {fig_no} ({ds}): {type(exc).__name__}: {exc}")
            return
        self.made.append(
            (
                f"Figure {fig_no} ({ds}, frame {view.frame}): {t.report.figure} of {self.meta['tasks'][task]} on "
                f"the same crop for every method; {view.how}{note}{changed}",
                paths[0],
            )
        )


def qualitative_figures(
    run_dir: str | Path,
    df: pd.DataFrame,
    out_dir: str | Path,
    crop_size: int = CROP,
    frame: str | None = None,
    crop: Box | None = None,
    device: str = "cpu",
    figure3: dict[str, str] | None = None,
    tasks: Callable[[str], Any] | None = None,
) -> tuple[list[tuple[str, Path]], list[str]]:
    """Figures 3, 4, 5 per data set; returns ([(caption, png)], [reasons for what was skipped]). ``figure3``: row
    label -> data set of the paper's Figure 3 as one figure (Set5, Set15, Set20: one frame of each, every method
    beside it; :func:`figure3_combined`). ``tasks``: the run's task networks by task config (the runner's
    ``Resources.task``) when the run writes its report, so Figures 4/5 build none again."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    index = sr_index(run_dir)
    if index.empty:
        return [], [f"Figures 3/4/5: no SR image index in {run_dir / 'sr_outputs'} (the run wrote none)"]
    figures = _Figures(run_dir, df, out_dir, device, tasks)
    index = index[index.path.map(lambda p: Path(p).is_file())]
    for ds, part in index.groupby("dataset", sort=True):
        figures.dataset(ds, part, crop_size, frame, crop)
    if figures.meta_reason and not figures.meta_reason_said:
        figures.skipped.append(f"Figures {figures.all_numbers}: {figures.meta_reason}; the task models are not known")
    if figure3:
        try:
            figures.made += figure3_combined(figure3, figures.shown, out_dir, crop_size, crop, figures.meta)
        except (OSError, ValueError) as exc:
            figures.skipped.append(f"Figure 3 (combined): {exc}")
    return figures.made, figures.skipped


def figure3_combined(
    rows: dict[str, str], shown: dict[str, tuple], out_dir: Path, crop_size: int, crop: Box | None, meta: dict | None
) -> list[tuple[str, Path]]:
    """The paper's Figure 3 as one figure: per row label (Set5, Set15, Set20) one frame of its data set, the methods
    every row's data set has as columns. A row's frame is its data set's Figure 3 frame unless an earlier row shows
    it already (nested subsets, or one data set standing in for all three): then the frame with most boxes among
    the others (:func:`choose_view` ``avoid``). Nothing when fewer than two rows' data sets have SR images (the one
    data set's own Figure 3 is that figure)."""
    present = [(name, ds) for name, ds in rows.items() if ds in shown]
    if len(present) < 2:
        return []
    methods = [m for m in shown[present[0][1]][1] if all(m in shown[ds][1] for _, ds in present)]
    used: set[str] = set()
    grid, parts = [], []
    for name, ds in present:
        view, _, label, path_of, shape_of, frames = shown[ds]
        if view.frame in used:
            source = ((meta or {}).get("dataset_files") or {}).get(ds)
            view = choose_view(ds, frames, shape_of, crop_size, None, crop, source=source, avoid=used)
        used.add(view.frame)
        grid.append((f"{name}: {view.frame}", [(label[m], path_of(m, view.frame)) for m in methods], view.crop))
        parts.append(f"{name} = {ds} frame {view.frame} ({view.how})")
    paths = image_rows(grid, "Figure 3: " + ", ".join(n for n, _ in present), out_dir / "fig3_combined")
    return [(f"Figure 3: one frame of each of {', '.join(n for n, _ in present)}; " + "; ".join(parts), paths[0])]


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size
