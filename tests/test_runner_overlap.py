"""The runner's overlapped frame pipeline (frames decoded ahead, PNGs written behind, benchmarks.background): the
same rows as the sequential pipeline (``--prefetch 0``), the same error row for a bad frame, the scored image
equal to the PNG read back, no thread left behind, also when the run is interrupted."""

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import noise_frames

import benchmarks.cache as cache_module
import benchmarks.job.frames as frames_part
from benchmarks.run import main as run_main
from downstream.datasets.folder import FolderDataset
from downstream.imageio import read_image, stored_image, to_uint8, write_png
from sr.vocab import OPT_PREFETCH

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--tasks", "quality", "--metrics", "psnr,ssim,entropy", "--quiet", "--no-report"]


def _frames(root: Path, n: int = 6, truncated: str | None = None) -> Path:
    noise_frames(root, n)
    if truncated:
        data = (root / f"{truncated}.png").read_bytes()
        (root / f"{truncated}.png").write_bytes(data[:50])
    return root


def _run(frames: Path, out: Path, depth: int, methods: str = "bicubic,nearest") -> bytes:
    args = ["--datasets", f"folder:{frames}", "--methods", methods, "--out", str(out), OPT_PREFETCH, str(depth)]
    assert run_main([*args, *QUICK]) == 0
    return (out / "results.csv").read_bytes()


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("irsr-load", "irsr-write"))]


def _threads() -> set[threading.Thread]:
    """Live threads, less tqdm's monitor (a daemon tqdm starts once per process, whichever code makes a bar)."""
    return {t for t in threading.enumerate() if t.name != "tqdm_monitor"}


@pytest.mark.parametrize("channels", ["auto", 1, 3])
@pytest.mark.parametrize("kind", ["gray", "gray_as_rgb", "rgb", "uint8"])
def test_the_image_scored_from_memory_is_the_png_read_back(tmp_path, kind, channels):
    rng = np.random.default_rng(1)
    arr = rng.uniform(-0.1, 1.1, (17, 23, 1 if kind == "gray" else 3)).astype(np.float32)  # clipped when stored
    if kind == "gray_as_rgb":
        arr[..., 1:] = arr[..., :1]
    if kind == "uint8":
        arr = to_uint8(arr)
    write_png(tmp_path / "x.png", arr)
    read_back = read_image(tmp_path / "x.png", channels=channels)
    in_memory = stored_image(arr, channels=channels)
    assert in_memory.dtype == read_back.dtype and in_memory.shape == read_back.shape
    assert np.array_equal(in_memory, read_back)


def test_results_are_identical_with_and_without_overlap_and_a_bad_frame_is_one_error_row(tmp_path):
    frames = _frames(tmp_path / "frames", truncated="f2")
    sequential = _run(frames, tmp_path / "seq", 0)
    assert _run(frames, tmp_path / "overlap", 2) == sequential
    assert _run(frames, tmp_path / "deep", 8) == sequential  # deeper than the data set
    df = _table(tmp_path / "overlap")
    errors = df[df.metric == "error"]
    assert sorted(errors.method) == ["bicubic", "nearest"] and set(errors["class"]) == {"f2"}
    assert errors.error.str.contains("f2.png").all()
    assert (df[df["class"] == "all"].n == 5).all()


def test_a_rerun_from_the_cache_scores_the_stored_pngs_identically_without_super_resolving(tmp_path, monkeypatch):
    """The first run scores the SR output from memory; with the metric cache removed, the rerun scores the PNGs
    read back from the cache (and calls no SR): the rows are the same bytes."""
    frames = _frames(tmp_path / "frames")
    out = tmp_path / "run"
    first = _run(frames, out, 2)
    shutil.rmtree(out / "cache" / "quality")
    calls = []
    import sr.registry

    build = sr.registry.load_method

    def counting_build(*args, **kwargs):
        method = build(*args, **kwargs)
        upscale = method.upscale
        method.upscale = lambda *a, **k: calls.append(1) or upscale(*a, **k)
        return method

    monkeypatch.setattr(sr.registry, "load_method", counting_build)
    assert _run(frames, out, 2) == first
    assert calls == [] and (out / "cache" / "quality").is_dir()


def test_worker_exceptions_are_the_same_error_rows_and_a_failed_write_caches_nothing(tmp_path, monkeypatch):
    """A frame whose loading raises an unexpected exception (in the loader thread) and a frame whose PNG cannot be
    written (in the writer thread) are each one error row, as in the sequential pipeline; the frame whose PNG
    failed has no metric value in the cache (its values would otherwise outlive the missing PNG)."""
    frames = _frames(tmp_path / "frames")
    load = FolderDataset.load

    def flaky_load(self, sample_id, labels=True):
        if sample_id == "f1":
            raise RuntimeError("disk hiccup")
        return load(self, sample_id, labels)

    write = cache_module.write_png  # the SR PNG write behind RunCache.write_sr (then its digest entry)

    def failing_write(path, arr):
        if Path(path).name.startswith("f4"):
            raise OSError("no space left on device")
        write(path, arr)

    monkeypatch.setattr(FolderDataset, "load", flaky_load)
    monkeypatch.setattr(cache_module, "write_png", failing_write)
    results = {depth: _run(frames, tmp_path / f"d{depth}", depth, methods="bicubic") for depth in (0, 2)}
    assert results[0] == results[2]
    errors = _table(tmp_path / "d2").query("metric == 'error'").set_index("class").error
    assert errors["f1"] == "RuntimeError: disk hiccup" and errors["f4"] == "OSError: no space left on device"
    for depth in (0, 2):
        cached = {p.name.split("__")[0] for p in (tmp_path / f"d{depth}" / "cache").rglob("*.*")}
        assert {"f0", "f2", "f3", "f5"} <= cached and not {"f1", "f4"} & cached


def test_no_thread_outlives_a_job_even_when_it_is_interrupted(tmp_path, monkeypatch):
    frames = _frames(tmp_path / "frames")
    before = _threads()
    _run(frames, tmp_path / "done", 2)
    assert _threads() == before and not _pipeline_threads()

    seen = []
    score = frames_part.stored_image

    def interrupted(arr, channels="auto"):
        seen.append(_pipeline_threads())
        if len(seen) == 3:
            raise KeyboardInterrupt
        return score(arr, channels=channels)

    monkeypatch.setattr(frames_part, "stored_image", interrupted)
    args = ["--datasets", f"folder:{frames}", "--methods", "bicubic", "--out", str(tmp_path / "stop"), *QUICK]
    assert run_main(args) == 130  # the CLI's exit status for Ctrl-C
    assert len(seen) == 3
    assert any(seen), "the pipeline threads never ran"
    assert _threads() == before and not _pipeline_threads()


def test_a_negative_depth_is_a_one_line_error(capsys):
    assert run_main([OPT_PREFETCH, "-1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and OPT_PREFETCH in err and "\n" not in err


@pytest.mark.slow
def test_demo_suite_with_tasks_gives_the_same_results_with_and_without_overlap(tmp_path):
    """Detection and segmentation read the SR PNGs the writer thread wrote: their rows and intervals too. Each run
    is a fresh process, as a user's is (ultralytics lowers torch's thread count for the rest of a process, which
    moves later float sums in the last bits)."""
    common = ["--methods", "bicubic,hr,lr_native", "--metrics", "psnr,niqe,entropy", "--quiet", "--no-report"]
    for depth in (0, 2):
        argv = [*common, "--out", str(tmp_path / f"d{depth}"), OPT_PREFETCH, str(depth)]
        subprocess.run([sys.executable, "-m", "benchmarks.run", *argv], cwd=REPO, check=True, capture_output=True)
    assert (tmp_path / "d0" / "results.csv").read_bytes() == (tmp_path / "d2" / "results.csv").read_bytes()
    assert {"detection", "segmentation"} <= set(_table(tmp_path / "d2").task)


@pytest.mark.gpu
def test_pinned_non_blocking_frames_on_cuda_give_the_same_results(tmp_path):
    frames = _frames(tmp_path / "frames")
    for depth in (0, 2):
        args = ["--datasets", f"folder:{frames}", "--methods", "bicubic", "--device", "cuda", OPT_PREFETCH, str(depth)]
        assert run_main([*args, "--out", str(tmp_path / f"d{depth}"), *QUICK]) == 0
    assert (tmp_path / "d0" / "results.csv").read_bytes() == (tmp_path / "d2" / "results.csv").read_bytes()
