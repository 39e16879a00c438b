"""Preparing a user's own data: YOLO / VOC / COCO boxes and mask folders keep the source's class names and counts.

Counts are checked against the source files themselves (lines, <object> elements, JSON annotations, mask pixels),
read here independently of the prepare code.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from downstream.datasets import load_dataset
from downstream.detection.prepare import main as det_main
from downstream.errors import LabelError
from downstream.segmentation.prepare import main as seg_main

CLASSES = ["person", "bike", "car", "DontCare"]


def _frames(root: Path, n: int, rng, suffix: str = ".png") -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"f{i:03d}" for i in range(n)]
    for sid in ids:
        Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8)).save(root / f"{sid}{suffix}")
    return ids


def _boxes(rng, k: int):
    """k boxes (cls, x, y, w, h) in pixels, inside a 60x40 frame."""
    out = []
    for _ in range(k):
        x, y = int(rng.integers(0, 40)), int(rng.integers(0, 25))
        out.append((int(rng.integers(0, len(CLASSES))), x, y, int(rng.integers(3, 15)), int(rng.integers(3, 10))))
    return out


def _yolo_source(root: Path, n: int = 12, class_file: bool = True) -> Counter:
    rng = np.random.default_rng(0)
    ids = _frames(root / "images", n, rng)
    (root / "labels").mkdir()
    truth = Counter()
    for i, sid in enumerate(ids):
        rows = _boxes(rng, i % 4)
        truth.update(CLASSES[c] for c, *_ in rows)
        (root / "labels" / f"{sid}.txt").write_text(
            "".join(
                f"{c} {(x + w / 2) / 60:.6f} {(y + h / 2) / 40:.6f} {w / 60:.6f} {h / 40:.6f}\n"
                for c, x, y, w, h in rows
            )
        )
    if class_file:
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return truth


def _load_yaml(out: Path) -> dict:
    return yaml.safe_load((out / "dataset.yaml").read_text())


def _prepared_counts(out: Path, names: list[str]) -> Counter:
    counts = Counter()
    for f in (out / "labels").glob("*.txt"):
        counts.update(names[int(line.split()[0])] for line in f.read_text().splitlines() if line.strip())
    return counts


def test_yolo_keeps_its_class_file_names_counts_and_copies(tmp_path):
    truth = _yolo_source(tmp_path / "src")
    out = tmp_path / "out"
    assert det_main(["yolo", "--src", str(tmp_path / "src"), "--out", str(out)]) == 0
    cfg = _load_yaml(out)
    assert cfg["classes"] == CLASSES and cfg["kind"] == "prepared"
    assert _prepared_counts(out, CLASSES) == truth
    assert os.stat(tmp_path / "src" / "images" / "f000.png").st_nlink == 1  # copied, not linked
    ds = load_dataset(str(out / "dataset.yaml"))  # usable as --datasets X.yaml
    assert ds.classes("boxes") == tuple(CLASSES)
    all_ids = sum(len(load_dataset(str(out / "dataset.yaml"), split=s).ids()) for s in ("train", "val", "test"))
    assert all_ids == 12
    first = sorted((tmp_path / "src" / "labels").glob("*.txt"))[1]
    sample = load_dataset(str(out / "dataset.yaml"), split="all").load(first.stem)
    assert len(sample.boxes) == len(first.read_text().splitlines())


def test_yolo_without_class_file_is_one_error_line(tmp_path, capsys):
    _yolo_source(tmp_path / "src", class_file=False)
    assert det_main(["yolo", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--classes" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_map_renames_merges_drops_and_is_recorded(tmp_path):
    truth = _yolo_source(tmp_path / "src")
    (tmp_path / "map.yaml").write_text("bike: vehicle\ncar: vehicle\nDontCare: null\n")
    out = tmp_path / "out"
    assert (
        det_main(
            ["yolo", "--src", str(tmp_path / "src"), "--out", str(out), "--map", str(tmp_path / "map.yaml"), "--link"]
        )
        == 0
    )
    cfg = _load_yaml(out)
    assert cfg["classes"] == ["person", "vehicle"]
    assert cfg["provenance"]["map"] == {"bike": "vehicle", "car": "vehicle", "DontCare": None}
    assert _prepared_counts(out, cfg["classes"]) == {"person": truth["person"], "vehicle": truth["bike"] + truth["car"]}
    assert os.stat(tmp_path / "src" / "images" / "f000.png").st_nlink == 2  # --link: a hard link


def test_failure_leaves_nothing_behind_and_keeps_a_previous_output(tmp_path):
    _yolo_source(tmp_path / "src")
    out = tmp_path / "out"
    assert det_main(["yolo", "--src", str(tmp_path / "src"), "--out", str(out)]) == 0
    before = sorted(p.name for p in (out / "labels").iterdir())
    (tmp_path / "src" / "labels" / "f005.txt").write_text("7 0.5 0.5 0.1 0.1\n")  # id beyond the class file
    with pytest.raises(LabelError, match="f005.txt:1"):
        from downstream.detection.prepare import prepare_detection

        prepare_detection("yolo", tmp_path / "src", tmp_path / "fresh")
    assert det_main(["yolo", "--src", str(tmp_path / "src"), "--out", str(out)]) == 2
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging folder left
    assert sorted(p.name for p in (out / "labels").iterdir()) == before  # the old output is intact


VOC = "<annotation><size><width>60</width><height>40</height></size>{}</annotation>"
OBJ = "<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>"


def test_voc_names_in_order_of_appearance_with_source_split(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "voc"
    ids = _frames(src / "JPEGImages", 10, rng, ".jpg")
    (src / "Annotations").mkdir()
    truth = Counter()
    for i, sid in enumerate(ids):
        rows = _boxes(rng, 1 + i % 3)
        truth.update(CLASSES[c] for c, *_ in rows)
        (src / "Annotations" / f"{sid}.xml").write_text(
            VOC.format("".join(OBJ.format(CLASSES[c], x, y, x + w, y + h) for c, x, y, w, h in rows))
        )
    (src / "ImageSets" / "Main").mkdir(parents=True)
    (src / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids[:7]))
    (src / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids[7:]))
    out = tmp_path / "out"
    assert det_main(["voc", "--src", str(src), "--out", str(out)]) == 0
    cfg = _load_yaml(out)
    first_seen = list(
        dict.fromkeys(
            re.findall(r"<name>(\w+)</name>", "".join((src / "Annotations" / f"{sid}.xml").read_text() for sid in ids))
        )
    )
    assert cfg["classes"] == first_seen
    assert _prepared_counts(out, cfg["classes"]) == truth
    assert (out / "splits" / "test.txt").read_text().split() == ids[7:]  # the source's own split
    assert (out / "images" / "f000.jpg").read_bytes() == (src / "JPEGImages" / "f000.jpg").read_bytes()
    (tmp_path / "order.txt").write_text("\n".join(CLASSES))
    assert (
        det_main(["voc", "--src", str(src), "--out", str(tmp_path / "o2"), "--classes", str(tmp_path / "order.txt")])
        == 0
    )
    assert _load_yaml(tmp_path / "o2")["classes"] == CLASSES


def test_coco_non_contiguous_category_ids(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "coco"
    ids = _frames(src / "data", 9, rng)
    cats = [{"id": 42, "name": "car"}, {"id": 3, "name": "person"}, {"id": 17, "name": "bike"}]
    files = {}
    for split, members in (("train", ids[:6]), ("val", ids[6:])):
        images, anns = [], []
        for k, sid in enumerate(members):
            images.append({"id": 1000 + k, "file_name": f"data/{sid}.png", "width": 60, "height": 40})
            for c, x, y, w, h in _boxes(rng, 1 + k % 3):
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": 1000 + k,
                        "category_id": cats[c % 3]["id"],
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                    }
                )
        anns.append({"id": 999, "image_id": 1000, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1})
        files[split] = {"images": images, "annotations": anns, "categories": cats}
        (src / f"{split}.json").write_text(json.dumps(files[split]))
    out = tmp_path / "out"
    assert det_main(["coco", "--src", str(src), "--out", str(out)]) == 0
    cfg = _load_yaml(out)
    assert cfg["classes"] == ["person", "bike", "car"]  # categories sorted by id
    by_id = {c["id"]: c["name"] for c in cats}
    truth = Counter(by_id[a["category_id"]] for f in files.values() for a in f["annotations"] if not a["iscrowd"])
    assert _prepared_counts(out, cfg["classes"]) == truth
    assert (out / "splits" / "test.txt").read_text().split() == ids[6:]  # val is the test split
    assert (out / "splits" / "train.txt").read_text().split() == ids[:6]
    sample = load_dataset(str(out / "dataset.yaml")).load(ids[6])
    ann = next(a for a in files["val"]["annotations"] if a["image_id"] == 1000 and not a["iscrowd"])
    x, y, w, h = ann["bbox"]
    assert cfg["classes"][int(sample.boxes[0, 0])] == by_id[ann["category_id"]]
    np.testing.assert_allclose(sample.boxes[0, 1:], [x, y, x + w, y + h], atol=1e-3)


def _mask_source(root: Path, rng) -> dict[str, np.ndarray]:
    """Binary masks stored as L 0/255, P, RGB and RGBA; returns the truth (0 / 1) per id."""
    ids = _frames(root / "images", 4, rng)
    (root / "masks").mkdir()
    truth = {}
    for sid, mode in zip(ids, ("L", "P", "RGB", "RGBA")):
        m = np.zeros((40, 60), np.uint8)
        m[int(rng.integers(0, 30)) :][:5, 10:14] = 1
        truth[sid] = m
        if mode == "L":
            Image.fromarray(m * 255).save(root / "masks" / f"{sid}.png")
        elif mode == "P":
            p = Image.fromarray(m, mode="P")
            p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
            p.save(root / "masks" / f"{sid}.png")
        else:
            rgb = np.repeat((m * 255)[..., None], 3, axis=2)
            if mode == "RGBA":
                rgb = np.concatenate([rgb, np.full((40, 60, 1), 255, np.uint8)], axis=2)
            Image.fromarray(rgb, mode=mode).save(root / "masks" / f"{sid}.png")
    return truth


def test_masks_of_every_mode_become_background_target(tmp_path):
    truth = _mask_source(tmp_path / "src", np.random.default_rng(3))
    out = tmp_path / "out"
    assert seg_main(["masks", "--src", str(tmp_path / "src"), "--out", str(out)]) == 0
    cfg = _load_yaml(out)
    assert cfg["seg_classes"] == ["background", "target"]
    assert cfg["provenance"]["pixels"]["target"] == sum(int(m.sum()) for m in truth.values())
    for sid, m in truth.items():
        np.testing.assert_array_equal(np.asarray(Image.open(out / "masks" / f"{sid}.png")), m)
    assert len(load_dataset(str(out / "dataset.yaml"), split="all").ids()) == 4


def test_id_masks_with_class_file_and_bad_values(tmp_path, capsys):
    rng = np.random.default_rng(4)
    src = tmp_path / "src"
    ids = _frames(src / "images", 3, rng)
    (src / "masks").mkdir()
    for sid in ids:
        Image.fromarray(rng.integers(0, 3, (40, 60), dtype=np.uint8)).save(src / "masks" / f"{sid}.png")
    assert seg_main(["masks", "--src", str(src), "--out", str(tmp_path / "bin")]) == 2  # 0..2 is not binary
    assert "--classes" in capsys.readouterr().err
    assert not (tmp_path / "bin").exists()
    (tmp_path / "c.txt").write_text("road\nperson\ncar\n")
    assert (
        seg_main(["masks", "--src", str(src), "--out", str(tmp_path / "o"), "--classes", str(tmp_path / "c.txt")]) == 0
    )
    assert _load_yaml(tmp_path / "o")["seg_classes"] == ["road", "person", "car"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "o" / "masks" / "f001.png")),
        np.asarray(Image.open(src / "masks" / "f001.png")),
    )


# ------------------------------------------------------------------------------------------ real samples


def _voc_object_counts(folder: Path) -> Counter:
    return Counter(n for f in folder.glob("*.xml") for n in re.findall(r"<name>\s*([^<]+?)\s*</name>", f.read_text()))


def _yolo_counts(folder: Path, names: list[str]) -> Counter:
    return Counter(
        names[int(line.split()[0])] for f in folder.glob("*.txt") for line in f.read_text().splitlines() if line.strip()
    )


def test_hit_uav_voc_and_yolo_keep_their_names_and_counts(shared_data, tmp_path):
    src = shared_data / "hit_uav"
    names = (src / "classes_yolo.txt").read_text().split()
    assert det_main(["voc", "--src", str(src), "--out", str(tmp_path / "voc")]) == 0
    cfg = _load_yaml(tmp_path / "voc")
    assert sorted(cfg["classes"]) == sorted(names)
    assert _prepared_counts(tmp_path / "voc", cfg["classes"]) == _voc_object_counts(src / "annotations_voc")
    assert det_main(["yolo", "--src", str(src), "--out", str(tmp_path / "yolo")]) == 0
    assert _load_yaml(tmp_path / "yolo")["classes"] == names  # classes_yolo.txt, in order
    assert _prepared_counts(tmp_path / "yolo", names) == _yolo_counts(src / "labels_yolo", names)
    (tmp_path / "map.yaml").write_text("DontCare: null\n")
    assert det_main(["voc", "--src", str(src), "--out", str(tmp_path / "m"), "--map", str(tmp_path / "map.yaml")]) == 0
    assert "DontCare" not in _load_yaml(tmp_path / "m")["classes"]


def test_m3fd_yolo_and_coco_keep_their_own_orders(shared_data, tmp_path):
    src = shared_data / "m3fd"
    names = (src / "classes_yolo.txt").read_text().split()
    assert det_main(["yolo", "--src", str(src), "--images", str(src / "ir"), "--out", str(tmp_path / "y")]) == 0
    assert _prepared_counts(tmp_path / "y", names) == _yolo_counts(src / "labels_yolo", names)
    coco = json.loads((src / "annotations_subset_coco.json").read_text())
    assert (
        det_main(
            [
                "coco",
                "--src",
                str(src),
                "--images",
                str(src / "ir"),
                "--annotations",
                str(src / "annotations_subset_coco.json"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    cfg = _load_yaml(tmp_path / "c")
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    assert cfg["classes"] == [cats[k] for k in sorted(cats)]
    expected = Counter(cats[a["category_id"]] for a in coco["annotations"])
    assert _prepared_counts(tmp_path / "c", cfg["classes"]) == expected


def test_foreign_yolo_labels_are_refused_by_the_m3fd_format(shared_data, tmp_path, capsys):
    src = shared_data / "hit_uav"
    assert (
        det_main(["m3fd", "--src", str(src), "--annotations", str(src / "labels_yolo"), "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert "prepare yolo" in err and "Bicycle" in err and not (tmp_path / "o").exists()


def test_sirst_masks_prepare_with_equal_pixel_counts(shared_data, tmp_path):
    src = shared_data / "sirst_v2_seg"
    assert seg_main(["masks", "--src", str(src), "--out", str(tmp_path / "s")]) == 0
    cfg = _load_yaml(tmp_path / "s")
    files = sorted((src / "masks").glob("*.png"))
    assert cfg["provenance"]["masks_written"] == len(files) == len(list((tmp_path / "s" / "masks").iterdir()))
    assert cfg["provenance"]["pixels"]["target"] == sum(int((np.asarray(Image.open(f)) == 255).sum()) for f in files)


def test_flir_like_coco_files_per_split_and_suffixed_masks(tmp_path):
    rng = np.random.default_rng(5)
    src = tmp_path / "flir"
    cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    args = ["coco", "--src", str(src), "--out", str(tmp_path / "out")]
    for split in ("train", "val"):
        folder = src / f"images_thermal_{split}"
        ids = _frames(folder / "data", 3, rng)
        images = [{"id": k, "file_name": f"data/{sid}.png"} for k, sid in enumerate(ids)]
        anns = [{"id": k + 1, "image_id": k, "category_id": 3, "bbox": [2, 2, 10, 8]} for k in range(3)]
        (folder / "coco.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
        args += ["--annotations", str(folder / "coco.json")]
    assert det_main(args) == 0
    cfg = _load_yaml(tmp_path / "out")
    assert cfg["classes"] == ["person", "car"] and cfg["provenance"]["boxes"] == {"car": 6}
    # both splits reuse the file names f000..f002: ids get the split as prefix; val is the test split
    assert (tmp_path / "out" / "splits" / "test.txt").read_text().split() == ["val_f000", "val_f001", "val_f002"]

    masks = tmp_path / "sirst"
    ids = _frames(masks / "images", 2, rng)
    (masks / "masks").mkdir()
    for sid in ids:
        Image.fromarray(np.zeros((40, 60), np.uint8)).save(masks / "masks" / f"{sid}_pixels0.png")
    assert seg_main(["masks", "--src", str(masks), "--out", str(tmp_path / "m")]) == 0
    assert sorted(p.stem for p in (tmp_path / "m" / "masks").iterdir()) == ids


def test_yolo_split_folders_are_kept_and_user_split_files_win(tmp_path):
    rng = np.random.default_rng(6)
    src = tmp_path / "y"
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        ids = [f"{split}{i}" for i in range(n)]
        (src / "images" / split).mkdir(parents=True)
        (src / "labels" / split).mkdir(parents=True)
        for sid in ids:
            Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8)).save(src / "images" / split / f"{sid}.png")
            (src / "labels" / split / f"{sid}.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (src / "classes.txt").write_text("\n".join(CLASSES))
    assert det_main(["yolo", "--src", str(src), "--out", str(tmp_path / "o")]) == 0
    splits = {s: (tmp_path / "o" / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert splits == {
        "train": [f"train{i}" for i in range(4)],
        "val": ["val0", "val1"],
        "test": ["test0", "test1", "test2"],
    }
    assert _prepared_counts(tmp_path / "o", CLASSES) == {"bike": 9}
    (tmp_path / "mine").mkdir()
    for name, ids in (("train", "train0 train1 val0"), ("val", "val1"), ("test", "test0 test1 test2 train2 train3")):
        (tmp_path / "mine" / f"{name}.txt").write_text(ids.replace(" ", "\n"))
    assert det_main(["yolo", "--src", str(src), "--out", str(tmp_path / "o2"), "--splits", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "o2" / "splits" / "train.txt").read_text().split() == ["train0", "train1", "val0"]


def test_a_prepared_folder_can_be_moved_and_still_runs(tmp_path, monkeypatch):
    from benchmarks.run import main as run_main

    _yolo_source(tmp_path / "src")
    out = tmp_path / "first" / "out"
    assert det_main(["yolo", "--src", str(tmp_path / "src"), "--out", str(out)]) == 0
    assert _load_yaml(out)["root"] == "."  # nothing in the YAML names where it was written
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    out.rename(moved)
    monkeypatch.chdir(moved.parent)  # the YAML given by a relative path, from another working directory
    test_ids = (moved / "splits" / "test.txt").read_text().split()
    ds = load_dataset("moved/dataset.yaml")
    assert ds.root == moved / "images" and sorted(ds.ids()) == sorted(test_ids)
    args = ["--datasets", "moved/dataset.yaml", "--tasks", "quality", "--methods", "bicubic", "--metrics", "psnr"]
    assert run_main([*args, "--out", str(tmp_path / "run"), "--quiet", "--no-report", "--device", "cpu"]) == 0
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    psnr = rows[rows.metric == "psnr"]
    assert len(psnr) == 1 and psnr.iloc[0]["n"] == len(test_ids) and psnr.iloc[0]["dataset"] == "out"


def test_yaml_relative_roots_and_data_dir_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("IRSR_DATA_DIR", str(tmp_path / "data"))
    rng = np.random.default_rng(5)
    for folder in ("sets/frames", "frames", "data/frames", "abs"):
        _frames(tmp_path / folder, 1, rng)
    yaml_file = tmp_path / "sets" / "x.yaml"
    for root, expected in (
        ("./frames", tmp_path / "sets" / "frames"),  # dotted: the YAML's own folder
        (".././frames", tmp_path / "frames"),
        ("frames", tmp_path / "data" / "frames"),  # not dotted: under the data directory, as before
        (str(tmp_path / "abs"), tmp_path / "abs"),
    ):
        yaml_file.write_text(yaml.safe_dump({"kind": "folder", "root": root}))
        assert load_dataset(str(yaml_file)).root == expected
