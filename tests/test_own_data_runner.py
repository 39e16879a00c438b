"""The benchmark with a user's data set: one error line for a class mismatch; bad labels never cost quality frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from benchmarks.run import main

M3FD = ["People", "Car", "Bus", "Motorcycle", "Lamp", "Truck"]


def _folder_set(root, classes, label_id: int = 0, bad: tuple[str, ...] = ()):
    """Five 64x48 frames with one YOLO box each (class ``label_id``; frames in ``bad`` use id 9) and a YAML."""
    rng = np.random.default_rng(0)
    (root / "ir").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(5):
        sid = f"f{i}"
        Image.fromarray(rng.integers(0, 255, (48, 64), dtype=np.uint8)).save(root / "ir" / f"{sid}.png")
        (root / "labels" / f"{sid}.txt").write_text(f"{9 if sid in bad else label_id} 0.5 0.5 0.2 0.3\n")
    spec = {
        "name": "mine",
        "kind": "folder",
        "root": str(root / "ir"),
        "labels_dir": str(root / "labels"),
        "classes": classes,
    }
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec))
    return root / "dataset.yaml"


def test_class_mismatch_is_one_error_line_before_any_work(tmp_path, capsys):
    data = _folder_set(tmp_path / "d", ["person", "bike", "car"])
    code = main(
        [
            "--datasets",
            str(data),
            "--tasks",
            "detection",
            "--methods",
            "bicubic",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "--no-report",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("error:") and "Traceback" not in err
    assert str(M3FD) in err and "['person', 'bike', 'car']" in err and "downstream.detection.train --dataset" in err
    assert not (tmp_path / "o" / "results.csv").exists()


def test_bad_labels_cost_the_task_not_the_quality_frames(tmp_path):
    data = _folder_set(tmp_path / "d", M3FD, bad=("f1", "f3"))
    assert (
        main(
            [
                "--datasets",
                str(data),
                "--tasks",
                "detection,quality",
                "--methods",
                "bicubic",
                "--metrics",
                "psnr",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
                "--no-report",
                "--device",
                "cpu",
                "--limit",
                "9",
            ]
        )
        == 0
    )
    rows = pd.read_csv(tmp_path / "o" / "results.csv")
    assert set(rows.dataset) == {"mine"}  # the YAML's name, not its path
    psnr = rows[(rows.metric == "psnr")].iloc[0]
    assert psnr["n"] == 5 and "subset_smaller" in psnr["flags"]  # every frame; 5 < --limit 9
    det = rows[rows.task == "detection"]
    assert len(det) == 1 and det.iloc[0].metric == "error" and "2 frame(s) have label errors" in det.iloc[0].error
    assert "f1.txt" in det.iloc[0].error
