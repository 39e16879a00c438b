"""Security round 3: a hostile data set, config or weights file runs nothing, deletes nothing, hangs
nothing and injects nothing.

Every case builds its hostile input fresh in a temporary folder, runs the documented command in process (its
``main(argv)``, as ``python -m ...`` runs it) or the loader a command calls, and is checked by one harness
(:func:`test_attack`) for:

* the expected outcome (one ``error:`` line and exit 2, or a correct result);
* no payload ran (no marker folder appeared);
* no network attempt (socket connections and name look-ups are refused and recorded);
* nothing of the user's changed (a decoy folder, listed with sizes and hashes before and after; in the output-folder
  cases the decoy *is* the folder under attack);
* bounded time (each case's limit) and memory (peak resident size grows by less than 1 GiB).

docs/security.md lists the cases with their outcomes. Cases that build reports or run the benchmark are marked slow.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import re
import resource
import shutil
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from poison import poison

from sr.vocab import RESULT_COLUMNS

MAX_RSS_GROWTH_KB = 1024 * 1024


@dataclass
class Attack:
    category: str
    name: str
    run: Callable[[Ctx], bool]
    seconds: float = 20.0
    slow: bool = False


ATTACKS: list[Attack] = []


def attack(category: str, name: str, seconds: float = 20.0, slow: bool = False):
    def wrap(fn):
        ATTACKS.append(Attack(category, name, fn, seconds, slow))
        return fn

    return wrap


class Ctx:
    def __init__(self, root: Path):
        self.root = root
        self.markers = root / "markers"
        self.markers.mkdir()
        self.decoy = root / "decoy"
        self.decoy.mkdir()
        (self.decoy / "notes.txt").write_text("the user's notes")
        (self.decoy / "sub").mkdir()
        (self.decoy / "sub" / ".draft.tmp").write_text("a hidden file of the user's")
        self.last = ""
        self.before: dict[str, str] | None = None

    def snapshot(self) -> None:
        """The decoy as the case set it up (a user's folder under attack): what must be unchanged at the end."""
        self.before = listing(self.decoy)

    def marker(self, name: str) -> Path:
        return self.markers / name

    def cli(self, main, *argv) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        self.last = f"exit {code}\nstdout: {out.getvalue()[-2000:]}\nstderr: {err.getvalue()[-2000:]}"
        return code, out.getvalue(), err.getvalue()

    def error(self, main, *argv, needles=()) -> bool:
        """Exit 2 with one ``error:`` line on stderr that holds every needle."""
        code, _, err = self.cli(main, *argv)
        lines = err.strip().splitlines()
        return code == 2 and bool(lines) and lines[0].startswith("error: ") and all(n in err for n in needles)

    def raises(self, fn, exc_type, *needles) -> bool:
        try:
            fn()
        except exc_type as exc:
            self.last = f"{type(exc).__name__}: {exc}"
            return all(n in str(exc) for n in needles)
        self.last = "no exception"
        return False


def listing(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def _case_id(a: Attack) -> str:
    return f"{a.category}: {a.name}"


# ------------------------------------------------------------------------------------------------- data helpers


def frame(path: Path, size=(32, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), mode="L").save(path)
    return path


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (a few hundred bytes: a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path


def yolo_source(ctx: Ctx, labels: dict[str, str] | None = None, classes: str = "car\nperson\n") -> Path:
    src = ctx.root / "src"
    for name in ("a", "b"):
        frame(src / "images" / f"{name}.png")
    (src / "labels").mkdir(parents=True, exist_ok=True)
    for name, text in (labels or {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.3 0.3 0.1 0.1\n"}).items():
        (src / "labels" / f"{name}.txt").write_text(text)
    (src / "classes.txt").write_text(classes)
    return src


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """About 1 KB of YAML that expands to width**levels nodes."""
    lines = ["a0: &a0 [" + ",".join(["x"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def det_main():
    from downstream.detection.prepare import main

    return main


def seg_main():
    from downstream.segmentation.prepare import main

    return main


# ------------------------------------------------------------------------------ task / weights trust boundary


def _yolo_yaml() -> dict:
    from ultralytics.nn.tasks import yaml_model_load

    return {k: v for k, v in yaml_model_load("yolov5n.yaml").items() if k != "yaml_file"}


def _irsr_yolo(path: Path, yaml_cfg: dict) -> Path:
    payload = {"format": "irsr-yolo", "version": 1, "yaml": yaml_cfg, "names": ["car"], "imgsz": 64}
    torch.save({**payload, "state_dict": {}, "meta": {}}, path)
    return path


@attack("task / weights trust boundary", "irsr-yolo model yaml with a torch_load layer naming a poisoned file")
def _(ctx):
    from downstream.detection.yolo import load_detector
    from sr.errors import UserError

    evil = ctx.root / "evil.pt"
    poison(evil, ctx.marker("torch_load"))
    cfg = _yolo_yaml()
    cfg["backbone"][0] = [-1, 1, "torch_load", [f"'{evil}'"]]
    path = _irsr_yolo(ctx.root / "detector.pt", cfg)
    return ctx.raises(lambda: load_detector(path), UserError, "torch_load", "not an allowed network module")


@attack(
    "task / weights trust boundary", "irsr-yolo model yaml with a TorchVision layer (download) and an eval'd activation"
)
def _(ctx):
    from downstream.detection.yolo import load_detector
    from sr.errors import UserError

    cfg = _yolo_yaml()
    cfg["backbone"][0] = [-1, 1, "TorchVision", ["resnet18", "DEFAULT"]]
    a = ctx.raises(lambda: load_detector(_irsr_yolo(ctx.root / "a.pt", cfg)), UserError, "TorchVision")
    cfg = _yolo_yaml()
    cfg["activation"] = f"__import__('os').mkdir('{ctx.marker('act')}')"
    b = ctx.raises(lambda: load_detector(_irsr_yolo(ctx.root / "b.pt", cfg)), UserError, "activation")
    return a and b


class _Reduce:
    """Pickles to ``target(*args)``: what a hostile checkpoint asks the unpickler to call."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return (self.target, self.args)


@attack("task / weights trust boundary", "ultralytics .pt asking for TorchVision('resnet18', 'DEFAULT') (a download)")
def _(ctx):
    from ultralytics.nn.modules.block import TorchVision

    from downstream.detection.yolo import main

    path = ctx.root / "tv.pt"
    torch.save({"model": _Reduce(TorchVision, "resnet18", "DEFAULT")}, path)
    return ctx.error(main, "convert", path, ctx.root / "out.pt", needles=("no ultralytics model",))


@attack("task / weights trust boundary", "ultralytics .pt of 1 KB asking for Linear(30000, 30000) (4 GB)", seconds=10)
def _(ctx):
    from downstream.detection.yolo import main

    path = ctx.root / "linear.pt"
    torch.save({"model": _Reduce(torch.nn.Linear, 30000, 30000)}, path)
    return path.stat().st_size < 4096 and ctx.error(main, "convert", path, ctx.root / "o.pt")


@attack("task / weights trust boundary", "ultralytics .pt whose DetectionModel.yaml names torch_load")
def _(ctx):
    from downstream.detection.yolo import build_model, main

    model = build_model("yolov5n.yaml", nc=2)
    model.yaml["backbone"][0] = [-1, 1, "torch_load", ["'/x.pt'"]]
    path = ctx.root / "m.pt"
    torch.save({"model": model}, path)
    return ctx.error(main, "convert", path, ctx.root / "o.pt", needles=("torch_load",))


@attack("task / weights trust boundary", "checkpoint whose zip records are compressed (inflate to any size)")
def _(ctx):
    from sr.checkpoint import CheckpointError, load_checkpoint

    plain = ctx.root / "plain.pt"
    torch.save({"w": torch.zeros(1000)}, plain)
    packed = ctx.root / "packed.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return ctx.raises(lambda: load_checkpoint(packed), CheckpointError, "uncompressed")


@attack("task / weights trust boundary", "task model given as a path to a model yaml outside ultralytics")
def _(ctx):
    from downstream.detection.yolo import build_model
    from sr.errors import ConfigError

    evil = ctx.root / "evil.yaml"
    evil.write_text("backbone: [[-1, 1, torch_load, ['x']]]\nhead: []\n")
    return ctx.raises(lambda: build_model(str(evil), nc=1), ConfigError, "shipped with ultralytics")


@attack("task / weights trust boundary", "segmentation task naming an mmseg config file as its variant")
def _(ctx):
    from downstream.segmentation.task import SegmentationTask
    from sr.errors import ConfigError

    cfg = ctx.root / "evil_config.py"
    cfg.write_text(f"import os; os.mkdir({str(ctx.marker('mmseg'))!r})\n")
    return ctx.raises(lambda: SegmentationTask(variant=str(cfg), random_weights=True), ConfigError, "variant")


@attack("task / weights trust boundary", "a benign ultralytics .pt is rebuilt from its yaml and equals the original")
def _(ctx):
    from downstream.detection.yolo import build_model, load_ultralytics_checkpoint

    torch.manual_seed(0)
    model = build_model("yolov5n.yaml", nc=3, names=["a", "b", "c"]).eval()
    path = ctx.root / "y.pt"
    torch.save({"model": model, "ema": None, "train_args": {"imgsz": 64}}, path)
    loaded = load_ultralytics_checkpoint(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        same = torch.allclose(loaded(x)[0], model(x)[0], atol=1e-5)
    return same and loaded.names == {0: "a", 1: "b", 2: "c"}


# ------------------------------------------------------------------------------------ hostile files and parsers


@attack("hostile files and parsers", "YAML alias bomb under provenance: in a prepared dataset.yaml", seconds=5)
def _(ctx):
    from downstream.datasets import dataset_config
    from sr.errors import ConfigError

    path = ctx.root / "ds" / "dataset.yaml"
    path.parent.mkdir()
    bomb = "\n".join("  " + line for line in alias_bomb().splitlines())
    path.write_text(f"kind: prepared\nroot: .\nprovenance:\n{bomb}\n")
    return len(path.read_bytes()) < 2048 and ctx.raises(lambda: dataset_config(str(path)), ConfigError, "alias bomb")


@attack("hostile files and parsers", "YAML alias bomb as the --classes file of prepare yolo", seconds=5)
def _(ctx):
    src = yolo_source(ctx)
    bomb = ctx.root / "classes.yaml"
    bomb.write_text(alias_bomb() + "names: *a9\n")
    return ctx.error(det_main(), "yolo", "--src", src, "--out", ctx.root / "out", "--classes", bomb, needles=("alias",))


@attack("hostile files and parsers", "YAML alias bomb as the --map file of prepare yolo", seconds=5)
def _(ctx):
    src = yolo_source(ctx)
    bomb = ctx.root / "map.yaml"
    bomb.write_text(alias_bomb() + "car: *a9\n")
    return ctx.error(det_main(), "yolo", "--src", src, "--out", ctx.root / "out", "--map", bomb, needles=("alias",))


@attack("hostile files and parsers", "YAML alias bomb in a --set value of sr.train", seconds=5)
def _(ctx):
    from sr.train.__main__ import main

    value = "{" + alias_bomb().replace("\n", ", ").rstrip(", ") + "}"
    out = ctx.root / "train"
    return ctx.error(main, "--config", "resshift_demo", "--set", f"train.iterations={value}", "--out", out) and not (
        out.exists() and any(out.iterdir())
    )


@attack("hostile files and parsers", "YAML nested 100,000 levels deep as a class file", seconds=5)
def _(ctx):
    src = yolo_source(ctx)
    deep = ctx.root / "classes.yaml"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    return ctx.error(det_main(), "yolo", "--src", src, "--out", ctx.root / "out", "--classes", deep, needles=("deep",))


@attack("hostile files and parsers", "COCO file nested 200,000 levels deep", seconds=10)
def _(ctx):
    src = ctx.root / "coco"
    frame(src / "images" / "a.png")
    (src / "ann.json").write_text('{"images": ' + "[" * 200_000 + "]" * 200_000 + "}")
    return ctx.error(det_main(), "coco", "--src", src, "--out", ctx.root / "out", needles=("nested",))


@attack("hostile files and parsers", "palette JSON nested 100,000 levels deep", seconds=10)
def _(ctx):
    src = ctx.root / "seg"
    frame(src / "images" / "a.png")
    frame(src / "masks" / "a.png")
    palette = ctx.root / "palette.json"
    palette.write_text("[" * 100_000 + "]" * 100_000)
    return ctx.error(seg_main(), "masks", "--src", src, "--out", ctx.root / "out", "--palette", palette)


@attack("hostile files and parsers", "30000x30000 mask PNG (prepare masks): pixel cap before decoding", seconds=10)
def _(ctx):
    src = ctx.root / "seg"
    frame(src / "images" / "a.png")
    png_header(src / "masks" / "a.png", 30000, 30000)
    return ctx.error(seg_main(), "masks", "--src", src, "--out", ctx.root / "out", needles=("a.png", "pixels"))


@attack("hostile files and parsers", "30000x30000 label PNG (prepare fmb)", seconds=10)
def _(ctx):
    src = ctx.root / "fmb"
    frame(src / "train" / "Infrared" / "a.png")
    png_header(src / "train" / "Label" / "a.png", 30000, 30000)
    frame(src / "test" / "Infrared" / "b.png")
    frame(src / "test" / "Label" / "b.png")
    return ctx.error(seg_main(), "fmb", "--src", src, "--out", ctx.root / "out", needles=("pixels",))


@attack("hostile files and parsers", "30000x30000 image in a YOLO source (prepare yolo)", seconds=10)
def _(ctx):
    src = yolo_source(ctx)
    png_header(src / "images" / "c.png", 30000, 30000)
    return ctx.error(det_main(), "yolo", "--src", src, "--out", ctx.root / "out", needles=("c.png", "pixels"))


def _bad_label(ctx, text: str, needle: str) -> bool:
    src = yolo_source(ctx, {"a": "0 0.5 0.5 0.2 0.2\n" + text, "b": ""})
    out = ctx.root / "out"
    return ctx.error(det_main(), "yolo", "--src", src, "--out", out, needles=(needle,)) and not out.exists()


@attack("hostile files and parsers", "YOLO label with nan (the box would vanish)")
def _(ctx):
    return _bad_label(ctx, "1 nan 0.5 0.2 0.2\n", "a.txt:2")


@attack("hostile files and parsers", "YOLO label with inf (the box would become the whole frame)")
def _(ctx):
    return _bad_label(ctx, "1 0.5 0.5 inf 0.2\n", "a.txt:2")


@attack("hostile files and parsers", "YOLO label with a negative width")
def _(ctx):
    return _bad_label(ctx, "1 0.5 0.5 -0.2 0.2\n", "a.txt:2")


@attack("hostile files and parsers", "VOC bndbox with nan")
def _(ctx):
    src = ctx.root / "voc"
    frame(src / "images" / "a.png")
    (src / "annotations").mkdir()
    (src / "annotations" / "a.xml").write_text(
        "<annotation><object><name>car</name><bndbox><xmin>nan</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox></object></annotation>"
    )
    return ctx.error(det_main(), "voc", "--src", src, "--out", ctx.root / "out", needles=("a.xml", "non-finite"))


def _coco(ctx, file_name: str) -> tuple[Path, Path]:
    src = ctx.root / "coco"
    frame(src / "images" / "a.png")
    data = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": file_name}],
        "annotations": [],
        "categories": [{"id": 1, "name": "car"}],
    }
    (src / "ann.json").write_text(json.dumps(data))
    return src, ctx.root / "out"


@attack("hostile files and parsers", "COCO file_name: an absolute path outside --src (would copy any readable image)")
def _(ctx):
    secret = frame(ctx.root / "outside" / "secret.png")
    src, out = _coco(ctx, str(secret))
    return ctx.error(det_main(), "coco", "--src", src, "--out", out, needles=("absolute",)) and not out.exists()


@attack("hostile files and parsers", "COCO file_name climbing out with ../")
def _(ctx):
    frame(ctx.root / "outside" / "secret.png")
    src, out = _coco(ctx, "../outside/secret.png")
    return ctx.error(det_main(), "coco", "--src", src, "--out", out, needles=("..",)) and not out.exists()


@attack("hostile files and parsers", "a symlink in the image folder leading outside --src")
def _(ctx):
    src = yolo_source(ctx)
    secret = frame(ctx.root / "outside" / "secret.png")
    (src / "images" / "c.png").symlink_to(secret)
    out = ctx.root / "out"
    return (
        ctx.error(det_main(), "yolo", "--src", src, "--out", out, needles=("outside the source",)) and not out.exists()
    )


# ----------------------------------------------------------------------------------------- own data -> reports


def _row(dataset, method, task, metric, cls, value, degradation="bicubic") -> dict:
    """One results.csv row (n = 4, interval value +- 0.05, no flags or error)."""
    key = dict(suite="s", dataset=dataset, degradation=degradation, method=method, task=task, metric=metric)
    values = {"value": value, "n": 4, "ci_low": value - 0.05, "ci_high": value + 0.05, "flags": "", "error": ""}
    return {**key, "class": cls, **values}


def _write_results(run: Path, rows: list[dict]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).to_csv(run / "results.csv", index=False)
    return run / "results.csv"


def _results(run: Path, name: str) -> Path:
    rows = []
    for i, method in enumerate(("bicubic", "lanczos")):
        rows.append(_row("ds", method, "quality", "psnr", "all", 30.0 + i))
        for j, cls in enumerate(("all", name, "car")):
            rows.append(_row("ds", method, "detection", "mAP50-95", cls, 0.3 + 0.1 * i + 0.05 * j))
    return _write_results(run, rows)


def _report(ctx, name: str) -> Path | None:
    from reports.__main__ import main

    results = _results(ctx.root / "run", name)
    out = ctx.root / "report"
    code, _, _ = ctx.cli(main, "--results", results, "--out", out)
    return out if code == 0 else None


def _md_rows(text: str) -> list[list[str]]:
    """The cells of each markdown table row (a backslash-escaped pipe is inside a cell)."""
    return [re.split(r"(?<!\\)\|", line.strip()[1:-1]) for line in text.splitlines() if line.startswith("|")]


def _md_intact(report: Path) -> bool:
    """Every markdown table is one header line, the separator line, then rows with as many cells as the header (a
    pipe or a line break in a name split nothing: a second header line would make the table not render at all)."""
    text = (report / "report.md").read_text()
    tables = [_md_rows(t) for t in text.split("\n\n") if t.startswith("|")]
    separator = re.compile(r"\s*:?-+:?\s*")
    return bool(tables) and all(
        len(rows) > 1 and all(separator.fullmatch(c) for c in rows[1]) and len({len(r) for r in rows}) == 1
        for rows in tables
    )


def _csv_cells(report: Path) -> list[str]:
    """Every cell of the report tables' CSVs (header rows included), as a spreadsheet would read them."""
    cells = []
    for path in report.glob("*.csv"):
        with open(path, newline="") as fh:
            cells += [c for row in csv.reader(fh) for c in row]
    return cells


@attack("own data -> reports", "class named <script>alert(1)</script>", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, "<script>alert(1)</script>")
    texts = [p.read_text() for p in report.rglob("*.md")] + [p.read_text() for p in report.rglob("*.html")]
    return bool(report) and all("<script>alert" not in t for t in texts) and _md_intact(report)


@attack("own data -> reports", "class named <img src=x onerror=alert(1)>", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, "<img src=x onerror=alert(1)>")
    texts = [p.read_text() for p in report.rglob("*.md")] + [p.read_text() for p in report.rglob("*.html")]
    return bool(report) and all("<img src=x" not in t for t in texts)


@attack("own data -> reports", "class named a|b (a markdown cell separator)", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, "a|b")
    return bool(report) and _md_intact(report) and "a\\|b" in (report / "report.md").read_text()


@attack("own data -> reports", "class name with a newline", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, "x\n| forged | row |")
    return bool(report) and _md_intact(report) and "\n| forged" not in (report / "report.md").read_text()


@attack("own data -> reports", "class named =HYPERLINK(...) in the report CSVs", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, '=HYPERLINK("http://evil","click")')
    cells = _csv_cells(report) if report else []
    return any(c.startswith("'=HYPERLINK") for c in cells) and not any(c.startswith("=") for c in cells)


@attack("own data -> reports", "classes named +cmd and @SUM(1) in the report CSVs", seconds=90, slow=True)
def _(ctx):
    ok = True
    for name in ("+cmd|' /C calc'!A0", "@SUM(1+1)"):
        report = _report(ctx, name)
        cells = _csv_cells(report) if report else []
        ok = ok and any(c == "'" + name for c in cells) and not any(c.startswith(("+", "@")) for c in cells)
        ctx.root.joinpath("report").rename(ctx.root / f"report-{len(name)}")
    return ok


@attack("own data -> reports", r"class named ^^5cinput^^7b/etc/passwd^^7d (TeX \input)", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, "^^5cinput^^7b/etc/passwd^^7d")
    tex = "".join(p.read_text() for p in report.glob("*.tex")) if report else ""
    return bool(tex) and "^^5c" not in tex and "\\textasciicircum{}\\textasciicircum{}5cinput" in tex


@attack("own data -> reports", "class named {~}#% in the .tex tables", seconds=60, slow=True)
def _(ctx):
    report = _report(ctx, "{~}#%")
    tex = "".join(p.read_text() for p in report.glob("*.tex")) if report else ""
    return "\\{\\textasciitilde{}\\}\\#\\%" in tex


@attack("own data -> reports", "class named $x^$ (matplotlib mathtext): the report and its radar are written", 60, True)
def _(ctx):
    report = _report(ctx, "$x^$")
    return bool(report) and any(report.glob("radar_*.png")) and (report / "report.md").is_file()


def _bad_class_file(ctx, classes: str, needle: str) -> bool:
    src = yolo_source(ctx, classes=classes)
    out = ctx.root / "out"
    return ctx.error(det_main(), "yolo", "--src", src, "--out", out, needles=(needle,)) and not out.exists()


@attack("own data -> reports", "class file with an escape sequence in a name: refused with file:line")
def _(ctx):
    return _bad_class_file(ctx, "car\nper\x1b[31mson\n", "classes.txt:2")


@attack("own data -> reports", "VOC object name with a tab inside")
def _(ctx):
    src = ctx.root / "voc"
    frame(src / "images" / "a.png")
    (src / "annotations").mkdir()
    (src / "annotations" / "a.xml").write_text(
        "<annotation><object><name>car\tx</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox></object></annotation>"
    )
    return ctx.error(det_main(), "voc", "--src", src, "--out", ctx.root / "out", needles=("a.xml", "control"))


@attack("own data -> reports", "COCO category name with a newline")
def _(ctx):
    src = ctx.root / "coco"
    frame(src / "images" / "a.png")
    data = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [], "categories": [{"id": 1, "name": "a\nb"}]}
    (src / "ann.json").write_text(json.dumps(data))
    return ctx.error(det_main(), "coco", "--src", src, "--out", ctx.root / "out", needles=("category 1", "control"))


# ------------------------------------------------------------------------------------------------ output folders


@attack("output folders", "prepare yolo --src X --out X (X has the user's dataset.yaml and notes)")
def _(ctx):
    src = yolo_source(ctx)
    for p in (ctx.root / "src").rglob("*"):  # the source itself is the decoy
        target = ctx.decoy / p.relative_to(ctx.root / "src")
        target.mkdir(parents=True, exist_ok=True) if p.is_dir() else target.write_bytes(p.read_bytes())
    (ctx.decoy / "dataset.yaml").write_text("kind: mine\n")
    del src
    ctx.snapshot()
    return ctx.error(det_main(), "yolo", "--src", ctx.decoy, "--out", ctx.decoy, needles=("read-only",))


@attack("output folders", "prepare --out inside --src")
def _(ctx):
    frame(ctx.decoy / "images" / "a.png")
    (ctx.decoy / "labels").mkdir()
    (ctx.decoy / "classes.txt").write_text("car\n")
    out = ctx.decoy / "prepared"
    ctx.snapshot()
    return ctx.error(det_main(), "yolo", "--src", ctx.decoy, "--out", out, needles=("is inside",))


@attack("output folders", "prepare --out containing --src")
def _(ctx):
    frame(ctx.decoy / "data" / "images" / "a.png")
    (ctx.decoy / "data" / "labels").mkdir()
    (ctx.decoy / "data" / "classes.txt").write_text("car\n")
    ctx.snapshot()
    return ctx.error(det_main(), "yolo", "--src", ctx.decoy / "data", "--out", ctx.decoy, needles=("contains",))


@attack("output folders", "prepare --out a user's folder holding a file named dataset.yaml")
def _(ctx):
    src = yolo_source(ctx)
    (ctx.decoy / "dataset.yaml").write_text("a file named like ours proves nothing\n")
    ctx.snapshot()
    return ctx.error(det_main(), "yolo", "--src", src, "--out", ctx.decoy, needles=("was not made by this tool",))


@attack("output folders", "prepare --out a user's folder with --overwrite: written beside, nothing replaced")
def _(ctx):
    from downstream.datasets.prepared import DATASET_FILE

    src = yolo_source(ctx)
    before = listing(ctx.decoy)
    out = ctx.decoy
    code, _, _ = ctx.cli(det_main(), "yolo", "--src", src, "--out", out, "--overwrite")
    after = listing(ctx.decoy)
    kept = all(after.get(k) == v for k, v in before.items())
    made = (out / DATASET_FILE).is_file() and (out / "images" / "a.png").is_file()
    for p in sorted(ctx.decoy.iterdir()):  # leave the decoy as it was for the harness's own check
        if p.name not in before:
            (p.unlink() if p.is_file() else __import__("shutil").rmtree(p))
    return code == 0 and kept and made


@attack("output folders", "prepare again into its own output where the user added notes: notes kept")
def _(ctx):
    src = yolo_source(ctx)
    out = ctx.root / "prepared"
    first, _, _ = ctx.cli(det_main(), "yolo", "--src", src, "--out", out)
    (out / "my_notes.txt").write_text("mine")
    (src / "labels" / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    second, _, _ = ctx.cli(det_main(), "yolo", "--src", src, "--out", out)
    return (
        first == 0
        and second == 0
        and (out / "my_notes.txt").read_text() == "mine"
        and (out / "labels" / "b.txt").read_text().startswith("0 ")
    )


@attack("output folders", "python -m reports --out a user's folder holding report.md")
def _(ctx):
    from reports.__main__ import main

    results = _results(ctx.root / "run", "car2")
    (ctx.decoy / "report.md").write_text("my report")
    ctx.snapshot()
    return ctx.error(main, "--results", results, "--out", ctx.decoy, needles=("was not made by this tool",))


@attack("output folders", "python -m reports --out the folder holding results.csv")
def _(ctx):
    from reports.__main__ import main

    results = _results(ctx.decoy, "car2")
    ctx.snapshot()
    return ctx.error(main, "--results", results, "--out", ctx.decoy, needles=("contains the source",))


@attack("output folders", "python -m reports.paper --out a user's folder")
def _(ctx):
    from reports.paper import main

    results = _results(ctx.root / "run", "car2")
    return ctx.error(main, "--results", results, "--out", ctx.decoy, needles=("was not made by this tool",))


@attack("output folders", "benchmarks.run --out a user's folder holding run.json")
def _(ctx):
    from benchmarks.run import main

    (ctx.decoy / "run.json").write_text("{}")
    ctx.snapshot()
    frames = ctx.root / "frames"
    frame(frames / "a.png")
    args = ("--datasets", f"folder:{frames}", "--methods", "bicubic", "--tasks", "quality", "--metrics", "psnr")
    return ctx.error(main, *args, "--out", ctx.decoy, "--quiet", needles=("was not made by this tool",))


@attack("output folders", "benchmarks.run --overwrite into a user's folder holding run.json: refused, not replaced")
def _(ctx):
    from benchmarks.run import main

    (ctx.decoy / "run.json").write_text("{}")
    ctx.snapshot()
    frames = ctx.root / "frames"
    frame(frames / "a.png")
    args = ("--datasets", f"folder:{frames}", "--methods", "bicubic", "--tasks", "quality", "--metrics", "psnr")
    return ctx.error(main, *args, "--out", ctx.decoy, "--overwrite", "--quiet", needles=("run.json",))


@attack("output folders", "sr.train --out a user's folder with log.csv and hidden *.tmp files")
def _(ctx):
    from sr.train.__main__ import main

    (ctx.decoy / "log.csv").write_text("mine")
    (ctx.decoy / ".scratch.tmp").write_text("mine")
    ctx.snapshot()
    argv = ("--config", "resshift_demo", "--out", ctx.decoy, "--device", "cpu", "--set", "train.iterations=1")
    return ctx.error(main, *argv, needles=("was not made by this tool",))


@attack("output folders", "a training run written --overwrite beside a user's files sweeps only its own temporaries")
def _(ctx):
    from sr.ownership import claim_folder
    from sr.train.trainer import TRAIN_ENTRIES

    owned = claim_folder(ctx.decoy, "training run", TRAIN_ENTRIES, overwrite=True)
    ours = [ctx.decoy / ".log.csv.k2j3.tmp", ctx.decoy / "ckpt" / ".last.pt.x1.tmp"]
    ours[1].parent.mkdir()
    for p in ours:
        p.write_text("a killed write of ours")
    removed = owned.sweep_temporaries(max_age_s=0)
    gone = not any(p.exists() for p in ours)
    for p in (ctx.decoy / ".irsr-owned.json", ctx.decoy / "ckpt"):  # undo our own for the decoy check
        p.unlink() if p.is_file() else p.rmdir()
    return removed == 2 and gone


@attack("output folders", "detection train --dataset --out a user's folder (refused before training)")
def _(ctx):
    from downstream.detection.train import main

    return ctx.error(
        main, "--dataset", ctx.root / "ds" / "dataset.yaml", "--out", ctx.decoy, needles=("was not made by this tool",)
    )


@attack("output folders", "a forged .irsr-owned.json (not ours) does not make a user's folder ours")
def _(ctx):
    src = yolo_source(ctx)
    (ctx.decoy / ".irsr-owned.json").write_text('{"tool": "irsr-bench", "kind": "prepared data set"}')
    ctx.snapshot()
    return ctx.error(det_main(), "yolo", "--src", src, "--out", ctx.decoy, needles=("was not made by this tool",))


# --------------------------------------------------------------------------------------------- run-folder cache


def _psnr_run(ctx) -> tuple[Path, Callable[[], int], Callable[[], float]]:
    """A bicubic PSNR run on one frame: (its folder, a function running it (exit code), one reading its PSNR)."""
    from benchmarks.run import main

    frames = ctx.root / "frames"
    frame(frames / "a.png", (48, 32))
    out = ctx.root / "run"
    argv = ("--datasets", f"folder:{frames}", "--methods", "bicubic", "--tasks", "quality", "--metrics", "psnr")
    argv += ("--out", out, "--quiet", "--device", "cpu", "--no-report")

    def psnr() -> float:
        df = pd.read_csv(out / "results.csv")
        return float(df[(df.metric == "psnr") & (df["class"] == "all")].value.iloc[0])

    return out, lambda: ctx.cli(main, *argv)[0], psnr


@attack("run-folder cache", "a quality cache entry rewritten to {'value': 99.5} is recomputed, not reported", 120, True)
def _(ctx):
    out, run, psnr = _psnr_run(ctx)
    first = run()
    real = psnr()
    entries = list((out / "cache" / "quality").rglob("*.json"))
    for entry in entries:
        entry.write_text('{"value": 99.5}')
    (out / "results.csv").unlink()
    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("benchmarks.cache").addHandler(handler)
    try:
        second = run()
    finally:
        logging.getLogger("benchmarks.cache").removeHandler(handler)
    ctx.last += f"\npsnr {real} then {psnr()}; warnings {warnings}"
    return (
        first == 0 and second == 0 and bool(entries) and psnr() == real != 99.5 and any("digest" in w for w in warnings)
    )


def _sr_entry(ctx) -> tuple[object, Path, np.ndarray]:
    """A run cache holding one SR output written by the runner's writer; returns (cache, PNG path, the image)."""
    from benchmarks.cache import RunCache

    cache = RunCache(ctx.root / "run" / "cache")
    png = cache.sr_path("m0", "d0", "a", "fp")
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 1), dtype=np.uint8)
    cache.write_sr(png, image)
    return cache, png, image


def _sr_refused(ctx, cache, png: Path) -> bool:
    """``read_sr`` gives None (the frame is super-resolved again) and warns that the PNG fails its digest."""
    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("benchmarks.cache").addHandler(handler)
    try:
        stored = cache.read_sr(png, channels=1)
    finally:
        logging.getLogger("benchmarks.cache").removeHandler(handler)
    ctx.last = f"read_sr: {None if stored is None else stored.shape}; warnings {warnings}"
    return stored is None and any(str(png) in w and "digest" in w for w in warnings)


@attack("run-folder cache", "a cached SR PNG replaced by another image is recomputed, not read")
def _(ctx):
    cache, png, image = _sr_entry(ctx)
    intact = cache.read_sr(png, channels=1)
    Image.fromarray(255 - image[..., 0], mode="L").save(png)  # a valid PNG, but not the one written
    same = intact is not None and np.array_equal(np.round(intact[..., 0] * 255), image[..., 0])
    return same and _sr_refused(ctx, cache, png)


@attack("run-folder cache", "a truncated cached SR PNG (a full disk, a killed copy) is recomputed, not read")
def _(ctx):
    cache, png, _ = _sr_entry(ctx)
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    return _sr_refused(ctx, cache, png)


@attack("run-folder cache", "a cached SR PNG copied with its entry under another sample's key is not read")
def _(ctx):
    cache, png, _ = _sr_entry(ctx)
    other = cache.sr_path("m0", "d0", "b", "fp")
    other.write_bytes(png.read_bytes())
    other.with_name(other.name + ".json").write_bytes(png.with_name(png.name + ".json").read_bytes())
    no_entry = cache.sr_path("m0", "d0", "c", "fp")  # a PNG placed without any entry
    no_entry.write_bytes(png.read_bytes())
    return _sr_refused(ctx, cache, other) and _sr_refused(ctx, cache, no_entry)


@attack("run-folder cache", "a cached SR PNG replaced by a white image is recomputed: the real PSNR", 120, True)
def _(ctx):
    out, run, psnr = _psnr_run(ctx)
    first = run()
    real = psnr()
    pngs = list((out / "cache" / "sr").rglob("*.png"))
    for png in pngs:
        with Image.open(png) as img:
            size = img.size
        Image.fromarray(np.full(size[::-1], 255, np.uint8), mode="L").save(png)
    shutil.rmtree(out / "cache" / "quality")  # the PSNR is computed again, from the SR output the run takes
    (out / "results.csv").unlink()
    second = run()
    ctx.last += f"\npsnr {real} then {psnr()}"
    return first == 0 and second == 0 and len(pngs) == 1 and psnr() == real


# ------------------------------------------------------------------------------------------ output files and runs


def _user_file(ctx, name: str) -> Path:
    path = ctx.decoy / name
    path.write_text("the user's table\n")
    ctx.snapshot()
    return path


_PERF = ("--degradations", "bicubic", "--sizes", "8x8", "--warmup", "0", "--repeat", "1")


@attack("output folders", "benchmarks.speed.perf --out a user's CSV file: refused, the file kept")
def _(ctx):
    from benchmarks.speed.perf import main

    out = _user_file(ctx, "perf.csv")
    return ctx.error(main, *_PERF, "--out", out, needles=("was not written by this tool", "--overwrite"))


@attack("output folders", "benchmarks.speed.perf --overwrite replaces a user's CSV; ours is rewritten; an edit is kept")
def _(ctx):
    from benchmarks.speed.perf import main

    out = ctx.root / "tables" / "perf.csv"
    out.parent.mkdir()
    out.write_text("the user's table\n")
    replaced = ctx.cli(main, *_PERF, "--out", out, "--overwrite")[0] == 0 and out.read_text().startswith("degradation")
    again = ctx.cli(main, *_PERF, "--out", out)[0] == 0  # our own file: rewritten without --overwrite
    out.write_text(out.read_text() + "the user's edit\n")  # an edited file of ours is the user's again
    edited = ctx.error(main, *_PERF, "--out", out, needles=("was not written by this tool",))
    return replaced and again and edited and out.read_text().endswith("the user's edit\n")


@attack("output folders", "a forged .perf.csv.irsr-owned.json does not make a user's perf.csv ours")
def _(ctx):
    from benchmarks.speed.perf import main

    out = ctx.decoy / "perf.csv"
    out.write_text("the user's table\n")
    forged = {"tool": "irsr-bench", "kind": "speed table", "entries": ["perf.csv"], "sha256": {"perf.csv": "0" * 64}}
    (ctx.decoy / ".perf.csv.irsr-owned.json").write_text(json.dumps({**forged, "id": "f" * 32, "command": []}))
    ctx.snapshot()
    return ctx.error(main, *_PERF, "--out", out, needles=("was not written by this tool",))


@attack("output folders", "benchmarks.speed.memory / train_cost --out a user's file: refused before measuring")
def _(ctx):
    from benchmarks.speed.memory import main as memory
    from benchmarks.speed.train_cost import main as train_cost

    out = _user_file(ctx, "mem.csv")
    return ctx.error(memory, "--sizes", "8x8", "--out", out, needles=("was not written by this tool",)) and ctx.error(
        train_cost, "--out", out, needles=("was not written by this tool",)
    )


@attack("output folders", "segmentation figure --out a user's PNG: refused before the task is loaded")
def _(ctx):
    from downstream.segmentation.figure import main

    out = _user_file(ctx, "fig5.png")
    image = frame(ctx.root / "sr.png")
    argv = ("--task", "segmentation_demo", "--image", f"sr={image}", "--out", out)
    return ctx.error(main, *argv, needles=("was not written by this tool",))


@attack("output folders", "detection figure --out a user's folder: refused before the detector is loaded")
def _(ctx):
    from downstream.detection.figure import main

    image = frame(ctx.root / "sr.png")
    argv = (f"sr={image}", "--weights", ctx.root / "det.pt", "--out", ctx.decoy)
    return ctx.error(main, *argv, needles=("was not made by this tool",))


@attack("output folders", "sr.weights convert --out a user's file: refused, nothing unpickled or written")
def _(ctx):
    from sr.weights.cli import main

    source = ctx.root / "trusted.pth"
    torch.save({"w": torch.zeros(2)}, source)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    out = _user_file(ctx, "w.safetensors")
    return ctx.error(main, "convert", source, "--sha256", sha, "--out", out, needles=("was not written by this tool",))


def _run_apart(ctx, frames: Path, out: Path, needle: str, methods: str = "bicubic") -> bool:
    from benchmarks.run import main

    frame(frames / "a.png")
    ctx.snapshot()
    args = ("--datasets", f"folder:{frames}", "--methods", methods, "--tasks", "quality", "--metrics", "psnr")
    return ctx.error(main, *args, "--out", out, "--quiet", needles=(needle,))


@attack("output folders", "benchmarks.run --out inside a data set's folder: refused, nothing written there")
def _(ctx):
    return _run_apart(ctx, ctx.decoy / "frames", ctx.decoy / "frames" / "run", "is inside the source")


@attack("output folders", "benchmarks.run --out equal to a data set's folder: refused")
def _(ctx):
    return _run_apart(ctx, ctx.decoy / "frames", ctx.decoy / "frames", "is the source")


@attack("output folders", "benchmarks.run --out containing a data set's folder: refused")
def _(ctx):
    return _run_apart(ctx, ctx.decoy / "data" / "frames", ctx.decoy / "data", "contains the source")


@attack("output folders", "benchmarks.run --out inside an outputs:DIR method's folder: refused")
def _(ctx):
    outputs = ctx.decoy / "sr_outputs"
    frame(outputs / "a.png", (128, 96))
    return _run_apart(ctx, ctx.root / "frames", outputs / "run", "is inside the source", f"outputs:{outputs}=mine")


# ------------------------------------------------------------------------------ names from data in report titles


def _titles_results(run: Path, dataset: str, task: str) -> Path:
    rows = [
        _row(dataset, method, task, "mAP50-95", cls, 0.3 + 0.1 * i + 0.05 * j)
        for i, method in enumerate(("bicubic", "lanczos"))
        for j, cls in enumerate(("all", "car"))
    ]
    return _write_results(run, rows)


def _titles_report(ctx, dataset: str, task: str) -> tuple[str, str]:
    """report.md + paper/paper.md, and paper/report.html of a run whose data set and task carry ``dataset`` / ``task``
    as names."""
    from reports.__main__ import main

    out = ctx.root / "report"
    code, _, _ = ctx.cli(main, "--results", _titles_results(ctx.root / "run", dataset, task), "--out", out)
    if code != 0:
        return "", ""
    return (out / "report.md").read_text() + (out / "paper" / "paper.md").read_text(), (
        out / "paper" / "report.html"
    ).read_text()


@attack("own data -> reports", "a task named <img src=x onerror=alert(1)>: its per-class heading is escaped", 60, True)
def _(ctx):
    md, page = _titles_report(ctx, "ds", "<img src=x onerror=alert(1)>")
    ctx.last += f"\n{md[:3000]}"
    return "&lt;img src=x onerror=alert(1)&gt;: mAP50-95 per class" in md and "<img src=x" not in md + page


@attack("own data -> reports", "a task name with a newline and '# forged': no heading of its own", 60, True)
def _(ctx):
    md, page = _titles_report(ctx, "ds", "x\n# forged heading\n")
    lines = md.splitlines()
    return bool(md) and not any(line.startswith("# forged") for line in lines) and "<h1>forged" not in page


@attack("own data -> reports", "a task named ../decoy/x: its table files stay inside the report folder", 60, True)
def _(ctx):
    md, _ = _titles_report(ctx, "ds", "../decoy/x")
    written = sorted(p.name for p in (ctx.root / "report").glob("*per_class*"))
    ctx.last += f"\nper-class files {written}"
    return bool(md) and not list(ctx.decoy.glob("x_per_class*")) and "___decoy_x_per_class.csv" in written


def _robustness(ctx, dataset: str, method: str = "bicubic") -> str:
    """robustness.md of a small table with two degradations, written with mathtext on as matplotlib starts."""
    import matplotlib

    from reports.robustness import write_robustness
    from reports.tables import load_results

    rows = [
        _row(dataset, m, "quality", "psnr", "all", 30.0 - i - (degradation != "bicubic"), degradation)
        for degradation in ("bicubic", "noise@1", "noise@2")
        for i, m in enumerate((method, "lanczos"))
    ]
    df = load_results(_write_results(ctx.root / "run", rows))
    matplotlib.rcParams["text.parse_math"] = True  # what a process that has not imported our radar module has
    out = ctx.root / "robustness"
    out.mkdir()
    return write_robustness(df, out).read_text()


@attack("own data -> reports", "a data set named a`<script>alert(1)</script> in robustness.md's headings and alt text")
def _(ctx):
    md = _robustness(ctx, "a`<script>alert(1)</script>")
    ctx.last = md[:3000]
    return "<script" not in md and "## a\\`&lt;script&gt;alert(1)&lt;/script&gt;" in md


@attack("own data -> reports", "a data set named $x^$ (mathtext) in the robustness plot and the significance picture")
def _(ctx):
    import matplotlib

    from reports.significance_figure import significance_figures

    md = _robustness(ctx, "$x^$", method="$y_$")
    sig = pd.DataFrame(
        [["$x^$", "quality", m, "psnr", "all", d, d < 0] for m, d in (("$y_$", 0.5), ("lanczos", -0.2))],
        columns=["dataset", "task", "method", "metric", "class", "delta", "significant"],
    )
    matplotlib.rcParams["text.parse_math"] = True
    pictures = significance_figures(sig, ctx.root / "sig", "bicubic", lambda task, metric: True)
    return "## `$x^$`" in md and any(ctx.root.joinpath("robustness").glob("*.png")) and len(pictures) == 1


# ------------------------------------------------------------------------------------------------- the harness


@pytest.mark.parametrize(
    "case", [pytest.param(a, id=_case_id(a), marks=[pytest.mark.slow] if a.slow else []) for a in ATTACKS]
)
def test_attack(case: Attack, tmp_path, monkeypatch):
    ctx = Ctx(tmp_path)
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network access refused by the security test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("IRSR_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    before = listing(ctx.decoy)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ok = case.run(ctx)
    seconds = time.perf_counter() - start
    assert ok, f"unexpected outcome\n{ctx.last}"
    assert not any(ctx.markers.iterdir()), "a payload ran"
    assert attempts == [], f"network attempts: {attempts}"
    assert listing(ctx.decoy) == (ctx.before or before), "the user's files changed"
    assert seconds < case.seconds, f"took {seconds:.1f} s (limit {case.seconds} s)"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < MAX_RSS_GROWTH_KB, "memory not bounded"


def test_the_matrix_covers_the_issue():
    """At least 40 new cases, in every category of the issue."""
    categories = {a.category for a in ATTACKS}
    assert len(ATTACKS) >= 40
    assert categories >= {
        "task / weights trust boundary",
        "hostile files and parsers",
        "own data -> reports",
        "output folders",
        "run-folder cache",
    }
    assert any(not a.slow for a in ATTACKS if a.category == "own data -> reports")


def _tasks_globals() -> list[str]:
    import ultralytics.nn.tasks as tasks

    return sorted(
        name
        for name, obj in vars(tasks).items()
        if not name.startswith("__") and not (isinstance(obj, type) and issubclass(obj, torch.nn.Module))
    )


@pytest.mark.parametrize("name", _tasks_globals())
def test_the_layer_allowlist_refuses_every_non_module_global_of_ultralytics_tasks(name):
    """Enumerated from the installed ultralytics (a new release's new globals are covered): a model description
    naming any global of ``ultralytics.nn.tasks`` that is not a network module class is refused."""
    from downstream.detection.model_yaml import check_model_description
    from sr.errors import ConfigError

    cfg = {"nc": 1, "backbone": [[-1, 1, name, []]], "head": [[-1, 1, "Detect", ["nc"]]]}
    with pytest.raises(ConfigError, match="not an allowed network module"):
        check_model_description(cfg, "test.pt")


def test_the_allowlist_holds_only_network_module_classes():
    """Every allowed layer name resolves (as parse_model resolves it) to an nn.Module class that is not TorchVision."""
    import ultralytics.nn.tasks as tasks

    from downstream.detection.model_yaml import LAYERS

    for name in LAYERS:
        obj = getattr(torch.nn, name[3:]) if name.startswith("nn.") else vars(tasks)[name]
        assert isinstance(obj, type) and issubclass(obj, torch.nn.Module), name
    assert "TorchVision" not in LAYERS and "torch_load" not in LAYERS


def test_every_shipped_detection_yaml_of_the_project_passes_the_check():
    from downstream.detection.yolo import model_description

    for name in ("yolov5n.yaml", "yolov5s.yaml", "yolov8n.yaml"):
        assert model_description(name)["backbone"]
