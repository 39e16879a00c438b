"""Attack and mistake matrix: every case of the security / robustness review, run as a user would run it.

    python tests/security_matrix.py [--only SUBSTRING] [--out table.md]

Each case runs the real command in a subprocess (``python -m ...``) against throw-away folders and is
classified by what happened: ``ok`` (the clear error, or the correct result, that the case expects),
``traceback`` (a Python traceback on stderr), ``hang`` (no exit within the case's time limit),
``wrong result`` (exit code, message or produced files not as expected) or ``code executed`` (a
poisoned weights file's payload ran: its marker folder exists). The table has one row per category;
``tests/test_security_matrix.py`` runs it (slow) and requires zeros in the last four columns.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from poison import poison as write_poisoned  # noqa: E402

from sr import weights as W  # noqa: E402

COLUMNS = ("category", "cases", "clear error", "traceback", "hang", "wrong result", "code executed")
QUICK = ["--quiet", "--device", "cpu", "--limit", "1"]


@dataclass
class Proc:
    code: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool


@dataclass
class Case:
    category: str
    name: str
    run: Callable[[Context], bool]  # True: the expected clear error / correct result
    timeout: float = 300.0


CASES: list[Case] = []


def case(category: str, name: str, timeout: float = 300.0):
    def wrap(fn):
        CASES.append(Case(category, name, fn, timeout))
        return fn

    return wrap


class Context:
    def __init__(self, root: Path):
        self.root = root
        self.markers = root / "markers"
        self.markers.mkdir()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "YOLO_OFFLINE": "1",
            "IRSR_WEIGHTS_DIR": str(root / "no_weights"),
            "IRSR_DATA_DIR": str(root / "no_data"),
            "TORCH_HOME": str(root / "torch_home"),
        }
        self.timeout = 300.0
        self.last: Proc | None = None
        self.weights = root / "poisoned_weights"
        for name, ent in W.registry().items():
            if not ent.file.startswith(W.BUNDLED_PREFIX):
                self.poison(W.path_of(name, self.weights))
        hub = root / "torch_home" / "hub"
        for rel in (
            "checkpoints/alexnet-owt-7be5be79.pth",
            "checkpoints/vgg16-397923af.pth",
            "pyiqa/LPIPS_v0.1_alex-df73285e.pth",
            "pyiqa/musiq_koniq_ckpt-e95806b9.pth",
            "pyiqa/niqe_modelparameters.mat",
            "clip/RN50.pt",
        ):
            self.poison(hub / rel)

    def poison(self, path: Path) -> None:
        write_poisoned(path, self.markers / f"{abs(hash(str(path)))}_{path.name}")

    def tmp(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        return path

    def run(self, *argv: str, env: dict[str, str] | None = None, timeout: float | None = None) -> Proc:
        start = time.monotonic()
        try:
            p = subprocess.run(
                [sys.executable, *argv],
                cwd=REPO,
                env={**self.env, **(env or {})},
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
            )
            proc = Proc(p.returncode, p.stdout, p.stderr, time.monotonic() - start, False)
        except subprocess.TimeoutExpired as exc:
            proc = Proc(None, str(exc.stdout or ""), str(exc.stderr or ""), time.monotonic() - start, True)
        self.last = proc
        return proc


def one_error(proc: Proc, *needles: str, code: int = 2) -> bool:
    """Exit ``code``, stderr starts with one ``error:`` line holding every needle, nothing on stdout."""
    first = proc.err.strip().splitlines()[:1]
    return proc.code == code and bool(first) and first[0].startswith("error: ") and all(n in proc.err for n in needles)


def results(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def row(rows, **match) -> list[dict[str, str]]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def frame(path: Path, size=(32, 24)) -> None:
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), mode="L").save(path)


def folder(ctx: Context, names=("a", "b")) -> Path:
    root = ctx.tmp("frames")
    for n in names:
        frame(root / f"{n}.png")
    return root


# ----------------------------------------------------------------------------- weights that run code when read


@case("poisoned weights", "metrics lpips,musiq,clipiqa,niqe with poisoned files (weights dir + $TORCH_HOME)")
def _(ctx):
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr,lpips,musiq,clipiqa,niqe",
        "--weights-dir",
        str(ctx.weights),
        "--out",
        str(out),
        *QUICK,
    )
    rows = results(out) if p.code == 0 else []
    errors = {m: row(rows, metric=m)[0]["error"] for m in ("lpips", "musiq", "clipiqa", "niqe") if row(rows, metric=m)}
    psnr = row(rows, metric="psnr", **{"class": "all"})
    return (
        p.code == 0
        and len(errors) == 4
        and all(errors.values())
        and psnr
        and float(psnr[0]["value"]) > 0
        and "posix.mkdir" in errors["lpips"]
        and "sr.weights convert" in errors["lpips"]
        and (out / "report" / "report.md").is_file()
    )


@case("poisoned weights", "valid AlexNet + poisoned LPIPS linear layers")
def _(ctx):
    from torchvision.models import alexnet

    wdir = ctx.tmp("weights")
    torch.save(alexnet(weights=None).state_dict(), _mk(W.path_of("torchvision_alexnet", wdir)))
    ctx.poison(W.path_of("pyiqa_lpips_alex", wdir))
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "lpips",
        "--weights-dir",
        str(wdir),
        "--out",
        str(out),
        *QUICK,
    )
    rows = row(results(out), metric="lpips") if p.code == 0 else []
    return len(rows) == 1 and rows[0]["value"] == "" and "LPIPS_v0.1_alex" in rows[0]["error"]


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@case("poisoned weights", "every metric, method and task with every registry file poisoned", timeout=900)
def _(ctx):
    sys.path.insert(0, str(REPO))
    from downstream.metrics import list_metrics

    out = ctx.tmp("run")
    tasks = [
        "quality",
        str(REPO / "configs/tasks/detection_m3fd.yaml"),
        str(REPO / "configs/tasks/segmentation_fmb.yaml"),
    ]
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--methods",
        "all",
        "--metrics",
        ",".join(list_metrics()),
        "--tasks",
        ",".join(tasks),
        "--weights-dir",
        str(ctx.weights),
        "--out",
        str(out),
        *QUICK,
        timeout=900,
    )
    rows = results(out) if p.code == 0 else []
    psnr = row(rows, method="bicubic", metric="psnr", **{"class": "all"})
    refused = row(rows, method="resshift_v1", metric="unavailable")
    return bool(
        psnr
        and float(psnr[0]["value"]) > 0
        and refused
        and "refusing to load" in refused[0]["error"]
        and row(rows, method="bicubic", task="detection")
        and row(rows, method="bicubic", task="segmentation")
    )


@case("poisoned weights", "sr.train validation reads the LPIPS file")
def _(ctx):
    p = ctx.run(
        "-m",
        "sr.train",
        "--config",
        "resshift_demo",
        "--weights-dir",
        str(ctx.weights),
        "--out",
        str(ctx.tmp("train")),
        "--device",
        "cpu",
        *_TINY,
    )
    return p.code == 0 and "validation without LPIPS" in p.out and '"psnr"' in p.out


_TINY = [
    "--set",
    "train.iterations=1",
    "--set",
    "data.max_images=2",
    "--set",
    "data.val_images=1",
    "--set",
    "data.batch_size=1",
    "--set",
    "train.progress=false",
    "--set",
    "train.tensorboard=false",
]


@case("poisoned weights", "yolo convert --trust-pickle of a file whose sha256 is not the trusted one")
def _(ctx):
    p = ctx.run(
        "-m",
        "downstream.detection.yolo",
        "convert",
        "--trust-pickle",
        str(W.path_of("yolov5su_coco", ctx.weights)),
        str(ctx.tmp("o") / "out.pt"),
    )
    return one_error(p, "sha256")


@case("poisoned weights", "sr.weights convert clip_rn50 (TorchScript) of a replaced file")
def _(ctx):
    return one_error(ctx.run("-m", "sr.weights", "--weights-dir", str(ctx.weights), "convert", "clip_rn50"), "sha256")


@case("poisoned weights", "a refused checkpoint names the global and the conversion command")
def _(ctx):
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "dat",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--weights-dir",
        str(ctx.weights),
        "--out",
        str(ctx.tmp("run")),
        *QUICK,
    )
    return (
        p.code == 0
        and "the global 'posix.mkdir'" in p.err
        and "python -m sr.weights convert" in p.err
        and "will likely succeed" not in p.err
    )


# ----------------------------------------------------------------------------- integrity of weights on disk


def _forged(ctx, full: bool) -> bool:
    wdir = ctx.tmp("weights")
    path = _mk(W.path_of("dat_x4", wdir))
    path.write_bytes(b"not DAT")
    st = path.stat()
    memo = path.with_name(f".{path.name}.sha256.json")
    key = (
        {
            "dev": st.st_dev,
            "inode": st.st_ino,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
        }
        if full
        else {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    )
    memo.write_text(json.dumps({"key": key, "sha256": W.entry("dat_x4").sha256}))
    p = ctx.run("-m", "sr.weights", "--weights-dir", str(wdir), "verify", *(["--full"] if full else []), "dat_x4")
    return p.code == 1 and "mismatch" in p.out and "ok " not in p.out


@case("weights integrity", "verify with a forged .sha256.json (size + mtime of the replaced file)")
def _(ctx):
    return _forged(ctx, full=False)


@case("weights integrity", "verify --full with a memo forged to every stat field")
def _(ctx):
    return _forged(ctx, full=True)


# ----------------------------------------------------------------------------- injection


@case("injection", "corple with --weights-dir holding a newline and 'injected_key: pwned'")
def _(ctx):
    repo = ctx.tmp("corple")
    _mk(repo / "basicsr" / "archs" / "dat_arch.py").write_text("")
    (repo / "basicsr" / "test.py").write_text(_FAKE_BASICSR)
    wdir = ctx.root / "w\n  injected_key: pwned"
    _mk(W.path_of("corple_x4", wdir)).write_bytes(b"weights")
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "corple",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--weights-dir",
        str(wdir),
        "--out",
        str(out),
        *QUICK,
        env={"IRSR_CORPLE_DIR": str(repo), "IRSR_CORPLE_PYTHON": sys.executable},
    )
    seen = (repo / "seen_keys.json").read_text() if (repo / "seen_keys.json").is_file() else ""
    psnr = row(results(out), metric="psnr", **{"class": "all"}) if p.code == 0 else []
    return bool(psnr) and seen and "injected_key" not in seen


_FAKE_BASICSR = """
import json, os, sys
import yaml
from PIL import Image
cfg = yaml.safe_load(open(sys.argv[sys.argv.index('-opt') + 1]))
def keys(node):
    if not isinstance(node, dict):
        return []
    return [k for key, value in node.items() for k in [key, *keys(value)]]
json.dump(keys(cfg), open(os.path.join(os.path.dirname(__file__), '..', 'seen_keys.json'), 'w'))
lq = cfg['datasets']['test_1']['dataroot_lq']
out = os.path.join('results', cfg['name'], 'visualization', 'irsr')
os.makedirs(out, exist_ok=True)
for name in os.listdir(lq):
    im = Image.open(os.path.join(lq, name))
    im.resize((im.width * 4, im.height * 4)).save(os.path.join(out, os.path.splitext(name)[0] + '_CoRPLE.png'))
"""


# ----------------------------------------------------------------------------- names and paths


def _run_error(ctx, *args: str, needle: str = "") -> bool:
    out = ctx.tmp("run") / "out"
    p = ctx.run("-m", "benchmarks.run", "--out", str(out), *args)
    return one_error(p, needle) and not out.exists()


@case("names and paths", "--suite ../../../../tmp/x (an existing YAML outside configs/)")
def _(ctx):
    (Path("/tmp") / "x.yaml").write_text("datasets: [synthir_demo]\n")
    try:
        return _run_error(ctx, "--suite", "../../../../tmp/x", needle="unknown suite")
    finally:
        (Path("/tmp") / "x.yaml").unlink(missing_ok=True)


@case("names and paths", "--datasets ../../../x")
def _(ctx):
    return _run_error(ctx, "--datasets", "../../../x", needle="unknown data set")


@case("names and paths", "--datasets m3fd_tset")
def _(ctx):
    return _run_error(ctx, "--datasets", "m3fd_tset", needle="Did you mean 'm3fd_test'")


@case("names and paths", "--datasets configs/datasets/synthir_demo.yaml (a YAML path is accepted)")
def _(ctx):
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        str(REPO / "configs/datasets/synthir_demo.yaml"),
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--out",
        str(out),
        "--no-report",
        *QUICK,
    )
    return p.code == 0 and bool(row(results(out), dataset="synthir_demo", metric="psnr"))


@case("names and paths", "an absolute path in sr_outputs/*.csv is not drawn into the report")
def _(ctx):
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--out",
        str(out),
        "--no-report",
        *QUICK,
    )
    outside = ctx.tmp("outside") / "secret.png"
    frame(outside, (128, 96))
    with open(next((out / "sr_outputs").glob("*.csv")), "a", newline="") as fh:
        csv.writer(fh).writerow(["x", "bicubic", "evil", str(outside)])
    q = ctx.run(
        "-c",
        "from reports.qualitative import sr_index; import sys; "
        f"sys.exit(int('{outside}' in set(sr_index({str(out)!r}).path)))",
    )
    return p.code == 0 and q.code == 0


# ----------------------------------------------------------------------------- one bad file never loses the run


@case("bad files", "NIQE parameter file that is not a .mat (the run finishes)")
def _(ctx):
    wdir = ctx.tmp("weights")
    _mk(W.path_of("pyiqa_niqe_params", wdir)).write_text("not a mat file")
    return _metric_error(ctx, wdir, "niqe", "niqe_modelparameters.mat")


@case("bad files", "truncated CLIP safetensors (the run finishes)")
def _(ctx):
    wdir = ctx.tmp("weights")
    _mk(W.path_of("clip_rn50_state", wdir)).write_bytes(b"\x10\x00")
    return _metric_error(ctx, wdir, "clipiqa", "RN50.safetensors")


@case("bad files", "zero-byte MUSIQ checkpoint (the run finishes)")
def _(ctx):
    wdir = ctx.tmp("weights")
    _mk(W.path_of("pyiqa_musiq_koniq", wdir)).write_bytes(b"")
    return _metric_error(ctx, wdir, "musiq", "empty")


def _metric_error(ctx, wdir: Path, metric: str, needle: str) -> bool:
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        f"psnr,{metric}",
        "--weights-dir",
        str(wdir),
        "--out",
        str(out),
        *QUICK,
    )
    rows = results(out) if p.code == 0 else []
    bad = row(rows, metric=metric)
    return bool(
        bad and needle in bad[0]["error"] and row(rows, metric="psnr") and (out / "report" / "report.md").is_file()
    )


@case("bad files", "9400x9400 PNG of ~100 KB (decompression bomb)", timeout=120)
def _(ctx):
    root = folder(ctx, ("good",))
    Image.new("1", (9400, 9400)).save(root / "bomb.png")
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{root}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr,ssim",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
        timeout=120,
    )
    bomb = row(results(out), **{"class": "bomb"}) if p.code == 0 else []
    return bool(bomb and "million pixels" in bomb[0]["error"]) and p.seconds < 60


@case("bad files", "dup.png and dup.jpg in one folder")
def _(ctx):
    root = folder(ctx, ("dup", "other"))
    frame(root / "dup.jpg")
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{root}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    )
    dup = row(results(out), **{"class": "dup"}) if p.code == 0 else []
    return bool(dup and "share the frame id" in dup[0]["error"])


@case("bad files", "1x1 and 3x3 frames")
def _(ctx):
    root = ctx.tmp("frames")
    frame(root / "one.png", (1, 1))
    frame(root / "three.png", (3, 3))
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{root}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    )
    rows = results(out) if p.code == 0 else []
    return (
        bool(row(rows, **{"class": "one"}))
        and "frame 1x1 is smaller" in row(rows, **{"class": "one"})[0]["error"]
        and "frame 3x3 is smaller" in row(rows, **{"class": "three"})[0]["error"]
    )


@case("bad files", "file names with a comma and a newline (sr_outputs index, then python -m reports)")
def _(ctx):
    root = folder(ctx, ("a,b", "c\nd", "plain"))
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{root}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    )
    q = ctx.run("-m", "reports", "--results", str(out / "results.csv"), "--out", str(ctx.tmp("rep")))
    with open(next((out / "sr_outputs").glob("*.csv")), newline="") as fh:
        ids = sorted(r["id"] for r in csv.DictReader(fh))
    return p.code == 0 and q.code == 0 and ids == ["a,b", "c\nd", "plain"]


@case("bad files", "unreadable data-set root (a file where the folder should be)")
def _(ctx):
    root = ctx.tmp("x") / "not_a_folder"
    root.write_text("x")
    out = ctx.tmp("run")
    p = ctx.run(
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{root}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--out",
        str(out),
        *QUICK,
    )
    rows = results(out) if p.code == 0 else []
    return bool(rows) and "is not a readable folder" in rows[0]["error"]


# ----------------------------------------------------------------------------- command-line mistakes


def _quality(ctx, *args):
    return (
        "-m",
        "benchmarks.run",
        "--datasets",
        f"folder:{folder(ctx)}",
        "--methods",
        "bicubic",
        "--tasks",
        "quality",
        "--metrics",
        "psnr",
        "--quiet",
        "--device",
        "cpu",
        *args,
    )


for _name, _args, _needle in [
    ("--limit -1", ["--limit", "-1"], "--limit"),
    ("--limit 0", ["--limit", "0"], "--limit"),
    ("--methods ,", ["--methods", ","], "--methods"),
    ("--device foo", ["--device", "foo"], "'foo'"),
    ("--device cuda:3", ["--device", "cuda:3"], "cuda:3"),
    ("--out naming a file", ["--out", "{file}"], "not a dir"),
    ("--out in a read-only place", ["--out", "/proc/irsr_out"], "cannot write"),
]:

    def _cli(ctx, args=_args, needle=_needle):
        f = ctx.tmp("f") / "afile"
        f.write_text("x")
        argv = [a.format(file=f) for a in args]
        return one_error(ctx.run(*_quality(ctx, *argv)), needle)

    case("command line", f"benchmarks.run {_name}")(_cli)


@case("command line", "benchmarks.run unknown task option (task YAML with 'bogus')")
def _(ctx):
    task = ctx.tmp("t") / "task.yaml"
    import yaml

    spec = yaml.safe_load((REPO / "configs/tasks/detection_demo.yaml").read_text())
    spec["options"]["bogus"] = 1
    task.write_text(yaml.safe_dump(spec))
    return one_error(ctx.run("-m", "benchmarks.run", "--tasks", str(task), "--out", str(ctx.tmp("run"))), "'bogus'")


for _name, _args, _needle in [
    ("iterations=abc", ["--set", "train.iterations=abc"], "train.iterations"),
    ("batch_size=0", ["--set", "data.batch_size=0"], "data.batch_size"),
    ("--set nosuch.key=1", ["--set", "nosuch.key=1"], "nosuch"),
    ("iterations=-5", ["--set", "train.iterations=-5"], ">= 1"),
    ("first_stage=vq without vq", ["--set", "model.first_stage=vq"], "model.vq"),
    ("--out on a file", ["--out", "{file}"], "not a directory"),
    ("--device foo", ["--device", "foo"], "'foo'"),
]:

    def _train(ctx, args=_args, needle=_needle):
        f = ctx.tmp("f") / "afile"
        f.write_text("x")
        argv = [a.format(file=f) for a in args]
        if "--out" not in argv:
            argv += ["--out", str(ctx.tmp("train"))]
        return one_error(ctx.run("-m", "sr.train", "--config", "resshift_demo", *argv), needle)

    case("command line", f"sr.train {_name}")(_train)


@case("command line", "sr.train --resume with a last.pt without 'model', then a zero-byte last.pt")
def _(ctx):
    out = ctx.tmp("train")
    from sr.ownership import claim_folder
    from sr.train.trainer import TRAIN_ENTRIES

    claim_folder(out, "training run", TRAIN_ENTRIES)  # a folder of an earlier training run (sr.ownership)
    (out / "ckpt").mkdir()
    torch.save({"ema": {}, "step": 1}, out / "ckpt" / "last.pt")
    a = ctx.run("-m", "sr.train", "--config", "resshift_demo", "--out", str(out), "--resume", *_TINY)
    (out / "ckpt" / "last.pt").write_bytes(b"")
    b = ctx.run("-m", "sr.train", "--config", "resshift_demo", "--out", str(out), "--resume", *_TINY)
    return one_error(a, "lacks model") and one_error(b, "empty (0 bytes")


@case("command line", "benchmarks.regress on a file that is not a results CSV")
def _(ctx):
    junk = ctx.tmp("j") / "x.csv"
    junk.write_text("a,b\n1,2\n")
    return one_error(ctx.run("-m", "benchmarks.regress", "--baseline", str(junk), "--results", str(junk)), "lacks")


@case("command line", "python -m reports on a non-CSV, sr.weights where on an unknown name")
def _(ctx):
    junk = ctx.tmp("j") / "x.png"
    junk.write_bytes(bytes(range(256)))
    a = ctx.run("-m", "reports", "--results", str(junk), "--out", str(ctx.tmp("rep")))
    b = ctx.run("-m", "sr.weights", "where", "dat_x5")
    return one_error(a, "not a results CSV") and one_error(b, "Did you mean 'dat_x4'")


@case("command line", "--debug shows the traceback of the same mistake")
def _(ctx):
    p = ctx.run("-m", "benchmarks.run", "--suite", "dem", "--debug", "--out", str(ctx.tmp("run")))
    ctx.last = Proc(p.code, p.out, "", p.seconds, p.timed_out)  # the traceback is asked for here
    return p.code == 2 and "Traceback" in p.err and "error: unknown suite 'dem'" in p.err


# ----------------------------------------------------------------------------- the run folder


@case("run folder", "three runs sharing --out at once (different methods): results hold the union")
def _(ctx):
    out = ctx.tmp("run")
    root = folder(ctx)
    env = {**ctx.env}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.run",
                "--datasets",
                f"folder:{root}",
                "--methods",
                m,
                "--tasks",
                "quality",
                "--metrics",
                "psnr",
                "--out",
                str(out),
                *QUICK,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in ("bicubic", "nearest", "lanczos")
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    ctx.last = Proc(max(p.returncode for p in procs), "", "\n".join(errs), 0, False)
    return all(p.returncode == 0 for p in procs) and {r["method"] for r in results(out)} == {
        "bicubic",
        "nearest",
        "lanczos",
    }


@case("run folder", "a report that fails half way (full disk) leaves the previous report whole")
def _(ctx):
    p = ctx.run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(REPO / "tests/test_run_folder.py::test_a_failed_report_leaves_the_previous_one_whole"),
    )
    ctx.last = Proc(p.code, p.out, "", p.seconds, p.timed_out)  # pytest prints expected tracebacks of its own
    return p.code == 0


@case("run folder", "sr.train --resume of a finished run adds no row to log.csv")
def _(ctx):
    out = ctx.tmp("train")
    a = ctx.run("-m", "sr.train", "--config", "resshift_demo", "--out", str(out), *_TINY)
    before = (out / "log.csv").read_text() if a.code == 0 else None
    b = ctx.run("-m", "sr.train", "--config", "resshift_demo", "--out", str(out), "--resume", *_TINY)
    return a.code == 0 and b.code == 0 and (out / "log.csv").read_text() == before


# ----------------------------------------------------------------------------- driver


def classify(ctx: Context, c: Case) -> str:
    before = set(ctx.markers.iterdir())
    ctx.last = None
    try:
        ok = bool(c.run(ctx))
    except Exception as exc:  # the harness's own check failed to read what the command produced
        print(f"  [{c.name}] check raised {type(exc).__name__}: {exc}", file=sys.stderr)
        ok = False
    if set(ctx.markers.iterdir()) - before:
        return "code executed"
    last = ctx.last
    if last is not None and last.timed_out:
        return "hang"
    if last is not None and "Traceback" in last.err:
        return "traceback"
    return "clear error" if ok else "wrong result"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="run only cases whose name contains this")
    p.add_argument("--out", help="write the table (markdown) and per-case results (JSON) here")
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="irsr-matrix-"))
    try:
        ctx = Context(root)
        table: dict[str, dict[str, int]] = {}
        outcomes = []
        for c in CASES:
            if args.only and args.only not in c.name:
                continue
            ctx.timeout = c.timeout
            outcome = classify(ctx, c)
            outcomes.append({"category": c.category, "case": c.name, "outcome": outcome})
            counts = table.setdefault(c.category, {k: 0 for k in COLUMNS[1:]})
            counts["cases"] += 1
            counts[outcome] += 1
            print(f"{outcome:<14} {c.category}: {c.name}", flush=True)
            if outcome != "clear error" and ctx.last is not None:
                print("    stderr: " + "\n    ".join(ctx.last.err.strip().splitlines()[-8:]), flush=True)
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        totals = {k: 0 for k in COLUMNS[1:]}
        for category, counts in table.items():
            lines.append(f"| {category} | " + " | ".join(str(counts[k]) for k in COLUMNS[1:]) + " |")
            totals = {k: totals[k] + counts[k] for k in totals}
        lines.append("| **all** | " + " | ".join(str(totals[k]) for k in COLUMNS[1:]) + " |")
        print("\n".join(lines))
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "security_matrix.md").write_text("\n".join(lines) + "\n")
            (Path(args.out) / "security_matrix.json").write_text(json.dumps(outcomes, indent=1))
        bad = sum(totals[k] for k in ("traceback", "hang", "wrong result", "code executed"))
        return 1 if bad else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
