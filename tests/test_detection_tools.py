"""M3FD preparation (VOC XML / YOLO txt -> ir/, labels/, meta/ splits) and the detection figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

M3FD = ("People", "Car", "Bus", "Motorcycle", "Lamp", "Truck")

VOC = """<annotation><filename>{id}.png</filename><size><width>64</width><height>48</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = (
    "<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
    "</bndbox></object>"
)


def _fake_download(root: Path, n: int = 30) -> dict[str, list]:
    (root / "Ir").mkdir(parents=True)
    (root / "Vis").mkdir()
    (root / "Annotation").mkdir()
    truth = {}
    rng = np.random.default_rng(1)
    names = ["People", "car", "Bus", "Motorcycle", "lamp", "Truck"]  # the official files mix cases
    for i in range(n):
        sid = f"{i:05d}"
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "Ir" / f"{sid}.png")
        objs, rows = [], []
        for k in range(i % 3 + 1):
            c = (i + k) % 6
            x1, y1 = 2 + 10 * k, 3 + 5 * k
            objs.append(OBJ.format(name=names[c], x1=x1, y1=y1, x2=x1 + 9, y2=y1 + 12))
            rows.append([c, x1, y1, x1 + 9, y1 + 12])
        (root / "Annotation" / f"{sid}.xml").write_text(VOC.format(id=sid, objects="\n".join(objs)))
        truth[sid] = rows
    return truth


def test_prepare_m3fd_from_voc_download(tmp_path):
    from downstream.datasets import load_dataset
    from downstream.datasets.splits import deterministic_splits
    from downstream.detection.prepare import main

    truth = _fake_download(tmp_path / "M3FD_Detection")
    out = tmp_path / "m3fd"
    assert main(["m3fd", "--src", str(tmp_path / "M3FD_Detection"), "--out", str(out)]) == 0
    assert len(list((out / "ir").glob("*.png"))) == 30 and len(list((out / "labels").glob("*.txt"))) == 30
    expected = deterministic_splits(sorted(truth))
    for split in ("train", "val", "test", "set5"):
        assert (out / "meta" / f"{split}.txt").read_text().split() == expected[split]
    assert "20250301" in (out / "meta" / "PREPARED.txt").read_text()
    ds = load_dataset("m3fd_train", root=str(out))
    assert ds.ids() == expected["train"] and ds.classes("boxes") == M3FD
    sample = ds.load(ds.ids()[0])
    np.testing.assert_allclose(sample.boxes, np.array(truth[ds.ids()[0]], np.float32), atol=1e-3)
    out.rename(tmp_path / "moved")  # its dataset.yaml names the folder it is in, not an absolute path
    assert load_dataset(str(tmp_path / "moved" / "dataset.yaml")).ids() == expected["test"]


def test_prepare_m3fd_with_user_splits_and_errors(tmp_path):
    from downstream.detection.prepare import main, prepare_m3fd
    from downstream.errors import LabelError
    from sr.errors import UserError

    _fake_download(tmp_path / "src", n=10)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train.txt").write_text("00000.png\n00001\n00002\n")
    (splits / "val.txt").write_text("00003\n")
    (splits / "test.txt").write_text("\n".join(f"{i:05d}" for i in range(4, 10)) + "\n")
    assert main(["m3fd", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "o"), "--splits", str(splits)]) == 0
    assert (tmp_path / "o" / "meta" / "train.txt").read_text().split() == ["00000", "00001", "00002"]
    assert len((tmp_path / "o" / "meta" / "set5.txt").read_text().split()) == 5
    (splits / "val.txt").write_text("99999\n")
    with pytest.raises(UserError, match="99999"):
        prepare_m3fd(tmp_path / "src", tmp_path / "o2", split_dir=splits)
    (tmp_path / "src" / "Annotation" / "00000.xml").write_text(
        VOC.format(id="00000", objects=OBJ.format(name="Tram", x1=1, y1=1, x2=5, y2=5))
    )
    with pytest.raises(LabelError, match="Tram"):
        prepare_m3fd(tmp_path / "src", tmp_path / "o3")


def test_prepare_real_m3fd_yolo_labels(shared_data, tmp_path):
    from downstream.datasets import load_dataset
    from downstream.detection.prepare import prepare_m3fd
    from downstream.labels import read_yolo_txt

    src = shared_data / "m3fd"
    summary = prepare_m3fd(src, tmp_path / "m3fd", images=src / "ir", annotations=src / "labels_yolo")
    assert summary["frames"] == 12 and summary["boxes"] == 147
    assert summary["per_class"] == {"People": 99, "Car": 36, "Bus": 4, "Lamp": 4, "Truck": 3, "Motorcycle": 1}
    ds = load_dataset("m3fd_test", root=str(tmp_path / "m3fd"), split="all")
    for sid in ds.ids()[:3]:
        w, h = Image.open(src / "ir" / f"{sid}.png").size
        np.testing.assert_allclose(
            ds.load(sid).boxes, read_yolo_txt(src / "labels_yolo" / f"{sid}.txt", w, h, 6), atol=1e-3
        )


def test_figure_one_png_per_method(tmp_path):
    from downstream.datasets.synthir import render_scene
    from downstream.detection.figure import draw, figure_per_method
    from downstream.detection.yolo import build_model

    scene = render_scene(3)
    images = {}
    for method, img in {
        "hr": scene.image,
        "nearest": np.asarray(
            Image.fromarray(scene.image).resize((80, 60), Image.BICUBIC).resize((320, 240), Image.NEAREST)
        ),
    }.items():
        images[method] = tmp_path / f"{method}.png"
        Image.fromarray(img).save(images[method])
    model = build_model("yolov5n.yaml", nc=6, names=M3FD)
    paths = figure_per_method(
        model,
        images,
        tmp_path / "fig",
        names=M3FD,
        crop=(40, 60, 200, 180),
        imgsz=320,
        conf=0.0001,
        gt=scene.boxes,
        frame="f3",
        device="auto",  # a DetectionTask's default device
    )
    assert sorted(p.name for p in paths.values()) == ["f3_hr.png", "f3_nearest.png"]
    assert Image.open(paths["hr"]).size == (160 * 3, 120 * 3)
    dets = np.array([[50, 70, 90, 120, 0.9, 1], [100, 80, 120, 130, 0.6, 0]])
    out = draw(images["hr"], dets, M3FD, tmp_path / "d.png", crop=(40, 60, 200, 180))
    arr = np.asarray(Image.open(out))
    assert (arr[:, :, 0] != arr[:, :, 1]).any()  # coloured boxes on the gray frame
