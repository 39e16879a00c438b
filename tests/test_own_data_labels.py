"""No label lost in silence: label files pair with their images
case-insensitively and by relative path in nested folders; images without labels and labels without images are
counted and reported; ``--require-labels`` and ``prepare coco --skip-missing``.

Expected box counts are re-read from the source files here, independently of the prepare code.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from downstream.detection.prepare import main as det_main
from downstream.segmentation.prepare import main as seg_main

NAMES = ["person", "car", "bike"]


def _frame(path: Path, rng) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8)).save(path)


def _label(path: Path, rows: list[tuple[int, float, float, float, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{c} {x} {y} {w} {h}\n" for c, x, y, w, h in rows))


def _source_boxes(labels: Path) -> Counter:
    """Boxes per class name, read from every label file under ``labels`` (any case, any depth)."""
    counts = Counter()
    for f in labels.rglob("*"):
        if f.is_file() and f.suffix.lower() == ".txt" and f.name != "classes.txt":
            counts.update(NAMES[int(line.split()[0])] for line in f.read_text().splitlines() if line.strip())
    return counts


def _prepared_boxes(out: Path, names: list[str]) -> Counter:
    counts = Counter()
    for f in (out / "labels").glob("*.txt"):
        counts.update(names[int(line.split()[0])] for line in f.read_text().splitlines() if line.strip())
    return counts


def _msrs_like(root: Path) -> Path:
    """MSRS-like: nested day/night folders, upper-case extensions, one label file missing, one orphan label."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(NAMES) + "\n")
    for part in ("day", "night"):
        for i in range(5):
            stem = f"{part[0]}{i:02d}"
            suffix = ".PNG" if i % 2 else ".png"
            _frame(root / "images" / part / f"{stem}{suffix}", rng)
            if (part, i) == ("night", 4):
                continue  # the missing label file
            name = f"{stem.upper()}.TXT" if i == 1 else f"{stem}.txt"
            _label(root / "labels" / part / name, [(i % 3, 0.5, 0.5, 0.2, 0.3), ((i + 1) % 3, 0.3, 0.3, 0.1, 0.1)])
    _label(root / "labels" / "day" / "ghost.txt", [(0, 0.5, 0.5, 0.1, 0.1)])  # a label without an image
    return root


def test_upper_case_nested_and_missing_labels_are_paired_counted_and_reported(tmp_path, capsys):
    src = _msrs_like(tmp_path / "msrs")
    out = tmp_path / "out"
    assert det_main(["yolo", "--src", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    cfg = yaml.safe_load((out / "dataset.yaml").read_text())
    truth = _source_boxes(src / "labels")
    truth.subtract({NAMES[0]: 1})  # ghost.txt has no image: its box is not a frame's
    assert _prepared_boxes(out, NAMES) == +truth  # the upper-case X.TXT labels were read
    frames = sorted(p.stem for p in (out / "images").iterdir())
    assert frames == sorted(f"{p}_{p[0]}{i:02d}" for p in ("day", "night") for i in range(5))
    prov = cfg["provenance"]
    assert sum(prov["unlabelled_images"].values()) == 1
    split_of_missing = next(
        s for s in ("train", "val", "test") if "night_n04" in (out / "splits" / f"{s}.txt").read_text()
    )
    assert prov["unlabelled_images"][split_of_missing] == 1
    notes = " ".join(prov["notes"])
    assert "1 image(s) have no label file" in notes and "night_n04" in notes
    assert "1 label file(s)" in notes and "ghost.txt" in notes
    assert f"'{split_of_missing}': 1" in printed and "ghost.txt" in printed


def test_require_labels_makes_a_missing_label_an_error_naming_the_folder(tmp_path, capsys):
    src = _msrs_like(tmp_path / "msrs")
    assert det_main(["yolo", "--src", str(src), "--out", str(tmp_path / "o"), "--require-labels"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--require-labels" in err and str(src / "labels") in err
    assert "night_n04" in err and not (tmp_path / "o").exists()


def test_an_empty_nested_image_folder_error_names_the_folder_searched(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "images" / "day").mkdir(parents=True)
    (src / "labels").mkdir()
    (src / "classes.txt").write_text("a\n")
    assert det_main(["yolo", "--src", str(src), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"no images found in {src / 'images'}" in err and "recursively" in err


def test_voc_missing_xml_is_counted_not_fatal(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "voc"
    for i in range(4):
        _frame(src / "JPEGImages" / f"a{i}.jpg", rng)
    (src / "Annotations").mkdir()
    for i in range(3):  # a3 has no XML; a0's is upper case
        xml = (
            "<annotation><object><name>car</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax>"
            "<ymax>30</ymax></bndbox></object></annotation>"
        )
        (src / "Annotations" / (f"A{i}.XML" if i == 0 else f"a{i}.xml")).write_text(xml)
    assert det_main(["voc", "--src", str(src), "--out", str(tmp_path / "o")]) == 0
    prov = yaml.safe_load((tmp_path / "o" / "dataset.yaml").read_text())["provenance"]
    assert prov["boxes"] == {"car": 3} and sum(prov["unlabelled_images"].values()) == 1


def test_coco_skip_missing_counts_what_it_skipped(tmp_path, capsys):
    rng = np.random.default_rng(2)
    src = tmp_path / "coco"
    for i in range(3):
        _frame(src / "images" / f"c{i}.png", rng)
    images = [{"id": i, "file_name": f"c{i}.png", "width": 60, "height": 40} for i in range(5)]  # c3, c4 absent
    anns = [{"id": i + 1, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": 0} for i in range(5)]
    (src / "ann.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "car"}]})
    )
    argv = ["coco", "--src", str(src), "--annotations", str(src / "ann.json"), "--out", str(tmp_path / "o")]
    assert det_main(argv) == 2
    assert "c3.png" in capsys.readouterr().err
    assert det_main([*argv, "--skip-missing"]) == 0
    printed = capsys.readouterr().out
    prov = yaml.safe_load((tmp_path / "o" / "dataset.yaml").read_text())["provenance"]
    assert prov["frames"] == 3 and prov["boxes"] == {"car": 3}
    assert any("2 image(s) not found, skipped" in n for n in prov["notes"]) and "2 image(s) not found" in printed


def test_nested_masks_pair_by_relative_path_any_case(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "seg"
    pixels = 0
    for part in ("day", "night"):
        for i in range(3):
            _frame(src / "images" / part / f"x{i}.png", rng)
            m = np.zeros((40, 60), np.uint8)
            m[5 : 8 + i, 10:20] = 255
            pixels += int((m == 255).sum())
            (src / "masks" / part).mkdir(parents=True, exist_ok=True)
            Image.fromarray(m).save(src / "masks" / part / (f"X{i}.PNG" if i == 1 else f"x{i}.png"))
    assert seg_main(["masks", "--src", str(src), "--out", str(tmp_path / "o")]) == 0
    prov = yaml.safe_load((tmp_path / "o" / "dataset.yaml").read_text())["provenance"]
    assert prov["masks_written"] == 6 and prov["pixels"]["target"] == pixels


def test_real_m3fd_labels_with_renamed_and_missing_files(shared_data, tmp_path, capsys):
    """../shared/data/m3fd with one label renamed to upper case and one removed: every box of the remaining files
    is kept (the old code read the renamed one as 'no objects'), and the missing one is counted."""
    src = tmp_path / "m3fd"
    shutil.copytree(shared_data / "m3fd" / "ir", src / "ir")
    shutil.copytree(shared_data / "m3fd" / "labels_yolo", src / "labels")
    shutil.copy(shared_data / "m3fd" / "classes_yolo.txt", src / "classes.txt")
    names = (src / "classes.txt").read_text().split()
    labels = sorted((src / "labels").glob("*.txt"))
    labels[0].rename(labels[0].with_name(labels[0].stem + ".TXT"))
    labels[1].unlink()
    expected = Counter()
    for f in (src / "labels").iterdir():
        expected.update(names[int(line.split()[0])] for line in f.read_text().splitlines() if line.strip())
    assert det_main(["yolo", "--src", str(src), "--images", str(src / "ir"), "--out", str(tmp_path / "o")]) == 0
    assert _prepared_boxes(tmp_path / "o", names) == expected
    prov = yaml.safe_load((tmp_path / "o" / "dataset.yaml").read_text())["provenance"]
    assert sum(prov["unlabelled_images"].values()) == 1 and labels[1].stem in " ".join(prov["notes"])


def _folder_yaml(root: Path, images: Path, labels: Path, **extra) -> Path:
    spec = {"name": "mine", "kind": "folder", "root": str(images), "labels_dir": str(labels), "classes": NAMES, **extra}
    (root / "mine.yaml").write_text(yaml.safe_dump(spec))
    return root / "mine.yaml"


def test_folder_kind_pairs_any_case_counts_missing_labels_and_require_labels_refuses(tmp_path, caplog):
    """The ``folder`` data-set kind (no prepare step): ``X.TXT`` is frame x's label (the old code read it as no
    objects), a missing label is counted in a warning worded as prepare's notes, an orphan label is reported,
    and ``require_labels: true`` makes the missing one an error naming the folder."""
    import logging

    import pytest

    from downstream.datasets import load_dataset
    from downstream.errors import DataError

    rng = np.random.default_rng(3)
    images, labels = tmp_path / "ir", tmp_path / "labels"
    for i in range(4):
        _frame(images / f"f{i}.png", rng)
    _label(labels / "F0.TXT", [(1, 0.5, 0.5, 0.2, 0.3), (2, 0.3, 0.3, 0.1, 0.1)])
    _label(labels / "f1.txt", [(0, 0.5, 0.5, 0.2, 0.3)])
    _label(labels / "f2.txt", [])  # labelled, no objects: not counted
    _label(labels / "ghost.txt", [(0, 0.5, 0.5, 0.1, 0.1)])  # no image
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(str(_folder_yaml(tmp_path, images, labels)))
        boxes = {i: ds.load(i).boxes for i in ds.ids()}
    assert [len(boxes[i]) for i in ("f0", "f1", "f2", "f3")] == [2, 1, 0, 0]
    assert sorted(boxes["f0"][:, 0].tolist()) == [1.0, 2.0]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "1 image(s) have no label file in" in warned and str(labels) in warned and "f3" in warned
    assert "(read as 'no objects')" in warned and "1 label file(s)" in warned and "ghost.txt" in warned
    with pytest.raises(DataError, match="require_labels") as exc:
        load_dataset(str(_folder_yaml(tmp_path, images, labels, require_labels=True)))
    assert str(labels) in str(exc.value) and "f3" in str(exc.value)
    _label(labels / "f3.txt", [(0, 0.5, 0.5, 0.2, 0.3)])
    assert len(load_dataset(str(_folder_yaml(tmp_path, images, labels, require_labels=True))).ids()) == 4
