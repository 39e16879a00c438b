"""``irsr run --methods outputs:DIR=NAME``: a folder of SR outputs written by a script outside the project is scored
like a method, matched to the data set's frames by id, with an error row for each missing, extra or wrongly sized
file."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.irsr import main as irsr

#: what a researcher's own environment runs: PIL only, no import of this project (run from another folder)
OUTSIDE_SCRIPT = """
import sys
from pathlib import Path
from PIL import Image

hr_dir, out_dir, order = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
out_dir.mkdir(parents=True, exist_ok=True)
frames = sorted(hr_dir.glob("*.png"))
names = [p.stem for p in frames]
if order == "rotated":  # each image saved under the next frame's id: a wrong matching
    names = names[1:] + names[:1]
for path, name in zip(frames, names):
    hr = Image.open(path)
    lr = hr.resize((hr.width // 4, hr.height // 4), Image.Resampling.BICUBIC)
    lr.resize((hr.width, hr.height), Image.Resampling.BICUBIC).save(out_dir / f"{name}.png")
"""

METRICS = "psnr,ssim,entropy,sd,ag"
COLUMNS = ["dataset", "task", "metric", "class", "value", "n", "ci_low", "ci_high", "flags", "error"]


def _frames(folder: Path, count: int) -> Path:
    """``count`` smooth 8-bit 40x32 frames ``f0.png`` ... (distinct, so a frame's x4 bicubic fits only that frame)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (4, 5), dtype=np.uint8))
        coarse.resize((40, 32), Image.Resampling.BICUBIC).save(folder / f"f{i}.png")
    return folder


def _outside_outputs(tmp_path: Path, hr: Path, name: str, order: str = "same") -> Path:
    script = tmp_path / "elsewhere" / "make_outputs.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(OUTSIDE_SCRIPT)
    out = tmp_path / name
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, str(script), str(hr), str(out), order], cwd=script.parent, env=env, check=True)
    return out


def _run(tmp_path: Path, methods: str, hr: Path, out: str = "run") -> pd.DataFrame:
    code = irsr(
        ["run", "--methods", methods, "--datasets", f"folder:{hr}", "--tasks", "quality", "--metrics", METRICS]
        + ["--out", str(tmp_path / out), "--device", "cpu", "--quiet", "--no-report", "--prefetch", "0"]
    )
    assert code == 0
    return pd.read_csv(tmp_path / out / "results.csv", keep_default_na=False, na_values=[""])


def _rows(results: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = results[results["method"] == method][COLUMNS]
    return rows.sort_values(["task", "metric", "class"]).reset_index(drop=True)


def test_outputs_of_an_outside_script_score_like_the_method_that_made_them(tmp_path):
    hr = _frames(tmp_path / "hr", 4)
    mine = _outside_outputs(tmp_path, hr, "mine_out")
    results = _run(tmp_path, f"outputs:{mine}=mine,bicubic", hr)
    ours, theirs = _rows(results, "mine"), _rows(results, "bicubic")
    assert set(ours["metric"]) == set(METRICS.split(",")), ours
    assert (ours["n"] == 4).all() and ours["error"].isna().all() and ours["value"].notna().all()
    pd.testing.assert_frame_equal(ours, theirs)

    # the same images under rotated ids: full-reference scores change, so the equality above rests on the matching
    rotated = _outside_outputs(tmp_path, hr, "rotated_out", order="rotated")
    wrong = _rows(_run(tmp_path, f"outputs:{rotated}=rotated,bicubic", hr, out="run2"), "rotated")
    psnr = {m: r.set_index("metric").loc["psnr", "value"] for m, r in (("ours", ours), ("wrong", wrong))}
    assert psnr["wrong"] < psnr["ours"] - 3, psnr


def test_missing_extra_and_wrongly_sized_outputs_are_rows(tmp_path):
    hr = _frames(tmp_path / "hr", 4)
    outs = _outside_outputs(tmp_path, hr, "outs")
    (outs / "f1.png").unlink()  # missing
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(outs / "f2.png")  # wrongly sized
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(outs / "stray.png")  # no such frame
    results = _run(tmp_path, f"outputs:{outs}", hr)
    rows = results[results["method"] == "outs"]  # default NAME: the folder's name
    errors = rows[rows["metric"] == "error"].set_index("class")["error"].to_dict()
    assert set(errors) == {"f1", "f2", "stray"}, errors
    assert "no output file for frame 'f1'" in errors["f1"]
    assert "f2.png: 10x10 (WxH), expected 40x32" in errors["f2"]
    assert "stray.png: no frame of the data set has the id 'stray'" in errors["stray"]
    psnr = rows[(rows["metric"] == "psnr") & (rows["class"] == "all")].iloc[0]
    assert psnr["n"] == 2 and not math.isnan(psnr["value"])  # f0 and f3 are scored


def test_a_changed_output_file_is_scored_again(tmp_path):
    hr = _frames(tmp_path / "hr", 2)
    outs = _outside_outputs(tmp_path, hr, "outs")
    first = _run(tmp_path, f"outputs:{outs}=x", hr)
    Image.fromarray(np.full((32, 40), 128, np.uint8)).save(outs / "f0.png")
    second = _run(tmp_path, f"outputs:{outs}=x", hr)  # same --out: the run cache must not serve the old image
    value = {
        k: r[(r["metric"] == "psnr") & (r["class"] == "all")]["value"].item() for k, r in (("a", first), ("b", second))
    }
    assert value["a"] != value["b"]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("outputs:", "expected outputs:DIR"),
        ("outputs:/no/such/folder=x", "is not a folder"),
        ("outputs:{d}=bicubic,bicubic", "two methods"),
    ],
)
def test_bad_outputs_specs_are_one_error_line(spec, needle, tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    code = irsr(
        [
            "run",
            "--methods",
            spec.format(d=folder),
            "--tasks",
            "quality",
            "--metrics",
            "psnr",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and needle in err and "Traceback" not in err


def test_tasks_score_the_outputs_like_the_method_that_made_them(tmp_path):
    """A labelled data set and a task (the toy box-brightness task of test_task_plugin): its rows, per class, are
    those of the built-in method whose images the outside script wrote."""
    hr = _frames(tmp_path / "hr", 3)
    labels = tmp_path / "labels"
    labels.mkdir()
    for i in range(3):  # YOLO boxes (class cx cy w h, normalised): one of class A, one of class B per frame
        (labels / f"f{i}.txt").write_text(f"0 0.25 0.25 0.4 0.4\n1 0.7 0.{6 + i} 0.3 0.3\n")
    (tmp_path / "box_brightness.yaml").write_text("factory: test_task_plugin:BoxBrightness\noptions: {gain: 1.0}\n")
    dataset = f"folder:{hr}?labels_dir={labels}&classes=[A,B]"
    (tmp_path / "suite.yaml").write_text(
        f"datasets: ['{dataset}']\nmetrics: [psnr]\ntasks: {{bright: {tmp_path / 'box_brightness.yaml'}}}\n"
    )
    mine = _outside_outputs(tmp_path, hr, "mine_out")
    argv = ["run", "--suite", str(tmp_path / "suite.yaml"), "--methods", f"outputs:{mine}=mine,bicubic"]
    assert irsr([*argv, "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet", "--no-report"]) == 0
    results = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False, na_values=[""])
    ours, theirs = _rows(results, "mine"), _rows(results, "bicubic")
    bright = ours[ours["task"] == "bright"]
    assert set(bright["class"]) == {"all", "A", "B"} and bright["error"].isna().all(), bright
    pd.testing.assert_frame_equal(ours, theirs)
