"""Bad images and bad labels. Each bad image is handled correctly or becomes a per-image
error row naming the file while the run goes on; bad labels are LabelErrors naming file (and line), or are
clipped as documented in downstream/labels.py."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.run import main as run_main
from downstream.errors import LabelError
from downstream.labels import read_mask, read_voc_xml, read_yolo_txt

QUICK = ["--methods", "bicubic", "--tasks", "quality", "--metrics", "psnr,ssim", "--quiet", "--no-report"]


def _png_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, **kw).save(buf, format="PNG")
    return buf.getvalue()


def _bad_image_folder(root) -> tuple[dict[str, str], dict[str, str]]:
    """Write one file of each kind; returns (handled kinds: id -> kind, error kinds: id -> kind)."""
    rng = np.random.default_rng(0)
    root.mkdir()
    gray = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    Image.fromarray(gray).save(root / "good_png.png")
    Image.fromarray(np.stack([gray] * 3, -1)).save(root / "good_jpeg.jpg", quality=95)
    # truncated PNG / JPEG, zero bytes, wrong extension (JPEG bytes named .png; text named .png)
    (root / "trunc_png.png").write_bytes(_png_bytes(gray)[:200])
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="JPEG")
    (root / "trunc_jpeg.jpg").write_bytes(buf.getvalue()[:300])
    (root / "zero.png").write_bytes(b"")
    (root / "jpeg_named_png.png").write_bytes(buf.getvalue())
    (root / "text_named_png.png").write_text("this is not an image\n")
    # 16-bit and float TIFF, 16-bit PNG
    Image.fromarray(rng.integers(0, 65536, (48, 64), dtype=np.uint16)).save(root / "u16_tiff.tif")
    Image.fromarray(rng.integers(0, 65536, (48, 64), dtype=np.uint16)).save(root / "u16_png.png")
    Image.fromarray(rng.random((48, 64), dtype=np.float32)).save(root / "float_tiff.tif")
    # RGBA, palette, LA
    rgba = np.concatenate([rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), np.full((48, 64, 1), 128, np.uint8)], -1)
    Image.fromarray(rgba, mode="RGBA").save(root / "rgba.png")
    Image.fromarray(gray).convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=16).save(root / "palette.png")
    Image.fromarray(np.stack([gray, gray], -1), mode="LA").save(root / "gray_alpha.png")
    # odd sizes, sizes not divisible by the scale, 1x1 and thinner than the scale
    Image.fromarray(rng.integers(0, 256, (37, 53), dtype=np.uint8)).save(root / "odd_37x53.png")
    Image.fromarray(rng.integers(0, 256, (42, 18), dtype=np.uint8)).save(root / "notdiv_42x18.png")
    Image.fromarray(np.full((1, 1), 7, np.uint8)).save(root / "one_by_one.png")
    Image.fromarray(rng.integers(0, 256, (3, 40), dtype=np.uint8)).save(root / "thin_3x40.png")
    handled = {
        "good_png": "good",
        "good_jpeg": "good",
        "jpeg_named_png": "wrong extension (JPEG bytes)",
        "u16_tiff": "16-bit TIFF",
        "u16_png": "16-bit PNG",
        "float_tiff": "float TIFF",
        "rgba": "RGBA",
        "palette": "palette",
        "gray_alpha": "LA",
        "odd_37x53": "odd size",
        "notdiv_42x18": "size not divisible by 4",
    }
    errors = {
        "trunc_png": "truncated PNG",
        "trunc_jpeg": "truncated JPEG",
        "zero": "zero-byte file",
        "text_named_png": "wrong extension (text)",
        "one_by_one": "1x1",
        "thin_3x40": "smaller than scale",
    }
    return handled, errors


def test_bad_images_are_handled_or_per_image_error_rows(tmp_path):
    frames = tmp_path / "frames"
    handled, errors = _bad_image_folder(frames)
    out = tmp_path / "run"
    assert run_main(["--datasets", f"folder:{frames}", "--out", str(out), *QUICK]) == 0
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    err = df[df.metric == "error"].set_index("class")
    assert set(err.index) == set(errors), f"error rows {sorted(err.index)} != expected {sorted(errors)}"
    for sample_id, message in err.error.items():
        assert sample_id in message, f"error for {sample_id} does not name its file: {message}"
        assert "\n" not in message
    psnr = df[(df.metric == "psnr") & (df["class"] == "all")]
    assert len(psnr) == 1 and psnr.n.iloc[0] == len(handled) and np.isfinite(psnr.value.iloc[0])
    # every handled image has an SR output of the cropped HR size
    pngs = list((out / "cache" / "sr").rglob("*.png"))
    assert len(pngs) == len(handled)
    sizes = {p.name.split("__")[0]: Image.open(p).size for p in pngs}
    assert sizes["odd_37x53"] == (52, 36) and sizes["notdiv_42x18"] == (16, 40) and sizes["rgba"] == (64, 48)


# ----------------------------------------------------------------------------------------------- labels
def _yolo(tmp_path, text: str):
    path = tmp_path / "lab.txt"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 -0.1 0.1\n", 2, "non-positive size"),
        ("0 0.5 0.5 0.0 0.1\n", 1, "non-positive size"),
        ("0 0.5 0.5 0.1 0.1\n\n7 0.5 0.5 0.1 0.1\n", 3, "class id 7"),
        ("-1 0.5 0.5 0.1 0.1\n", 1, "class id -1"),
        ("0.5 0.5 0.5 0.1 0.1\n", 1, "class id 0.5"),
        ("0 0.5 0.5 0.1\n", 1, "expected 5 fields"),
        ("0 a 0.5 0.1 0.1\n", 1, "non-numeric"),
    ],
)
def test_yolo_errors_name_file_and_line(tmp_path, text, line, what):
    path = _yolo(tmp_path, text)
    with pytest.raises(LabelError) as info:
        read_yolo_txt(path, 100, 80, num_classes=3)
    assert f"{path}:{line}:" in str(info.value) and what in str(info.value)


def test_yolo_clipping_and_empty_files(tmp_path):
    assert read_yolo_txt(_yolo(tmp_path, ""), 100, 80, 3).shape == (0, 5)
    assert read_yolo_txt(_yolo(tmp_path, "\n \n"), 100, 80, 3).shape == (0, 5)
    boxes = read_yolo_txt(_yolo(tmp_path, "1 0.95 0.5 0.2 0.5\n2 1.5 1.5 0.2 0.2\n"), 100, 80, 3)
    # first box clipped at the right edge; second entirely outside: dropped (documented)
    np.testing.assert_allclose(boxes, [[1, 85, 20, 100, 60]])


def _voc(tmp_path, objects: str):
    path = tmp_path / "ann.xml"
    path.write_text(f"<annotation><size><width>100</width><height>80</height></size>{objects}</annotation>")
    return path


def _obj(name, x1, y1, x2, y2):
    return (
        f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
    )


def test_voc_errors_and_clipping(tmp_path):
    classes = {"People": 0, "Car": 1}
    for objects, what in (
        (_obj("Tank", 1, 1, 5, 5), "unknown class 'Tank'"),
        (_obj("Car", 10, 10, 10, 20), "non-positive size"),
        (_obj("Car", 10, 10, 5, 20), "non-positive size"),
        (_obj("Car", "x", 10, 5, 20), "non-numeric"),
        ("<object><name>Car</name>", "invalid XML"),
    ):
        path = _voc(tmp_path, objects)
        with pytest.raises(LabelError) as info:
            read_voc_xml(path, classes, 100, 80)
        assert str(path) in str(info.value) and what in str(info.value)
    boxes = read_voc_xml(
        _voc(tmp_path, _obj("Car", -10, 70, 120, 95) + _obj("People", 200, 200, 210, 210)), classes, 100, 80
    )
    np.testing.assert_allclose(boxes, [[1, 0, 70, 100, 80]])
    assert read_voc_xml(_voc(tmp_path, ""), classes, 100, 80).shape == (0, 5)


def test_mask_errors(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(path)
    with pytest.raises(LabelError, match=r"mask is 12x10, image is 16x8") as info:
        read_mask(path, (8, 16), 5)
    assert str(path) in str(info.value)
    Image.fromarray(np.array([[0, 1, 9, 200]], np.uint8)).save(path)
    with pytest.raises(LabelError, match=r"mask ids \[9, 200\] outside 0..4") as info:
        read_mask(path, (1, 4), 5)
    assert str(path) in str(info.value)
    Image.fromarray(np.array([[0, 1, 255, 4]], np.uint8)).save(path)
    mask = read_mask(path, (1, 4), 5)  # 255 is the ignore value
    assert mask.tolist() == [[0, 1, 255, 4]]
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(LabelError, match="empty.png"):
        read_mask(tmp_path / "empty.png", (1, 4), 5)
    Image.fromarray(np.full((2, 2, 3), 90, np.uint8)).save(path)  # RGB label image: read as gray, then checked
    with pytest.raises(LabelError, match=r"mask ids \[90\] outside"):
        read_mask(path, (2, 2), 5)


def test_bad_label_in_a_run_is_an_error_row_naming_file_and_line(tmp_path):
    frames, labels = tmp_path / "frames", tmp_path / "labels"
    frames.mkdir(), labels.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(frames / f"f{i}.png")
        (labels / f"f{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (labels / "f1.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    cfg = tmp_path / "configs"
    import shutil

    from sr.config import CONFIG_DIR

    shutil.copytree(CONFIG_DIR, cfg)
    (cfg / "datasets" / "labelled.yaml").write_text(
        f"kind: folder\nroot: {frames}\nlabels_dir: {labels}\nclasses: [People, Car, Bus, Motorcycle, Lamp, Truck]\n"
    )
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--datasets",
            "labelled",
            "--out",
            str(out),
            "--methods",
            "bicubic",
            "--tasks",
            "quality,detection",
            "--metrics",
            "psnr",
            "--quiet",
            "--no-report",
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "IRSR_CONFIG_DIR": str(cfg)},
    )
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    err = df[df.metric == "error"]
    # the detection task is not scored on a set with a broken label file; the error names file and line
    assert list(err["task"]) == ["detection"] and f"{labels / 'f1.txt'}:2:" in err.error.iloc[0]
    # the broken label does not take the frame out of the quality metrics
    assert df[(df.metric == "psnr") & (df["class"] == "all")].n.iloc[0] == 3
