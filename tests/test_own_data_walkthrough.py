"""docs/own_data.md's walk-through on the bundled samples, run command by command as the page shows it.

Every ``python -m`` line of the page's ``sh`` block runs in order (``$SHARED`` = ../shared/data, ``$WORK`` = a
scratch folder), through the same ``main(argv)`` the command line calls; then the outputs are checked: data sets with
their own class names, task models bound to them, and benchmark rows, radar plot and figure under those names.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pandas as pd
import yaml

DOC = Path(__file__).resolve().parents[1] / "docs" / "own_data.md"


def walkthrough_commands(shared: Path, work: Path) -> list[list[str]]:
    text = DOC.read_text()
    section = text[text.index("### Try it on the bundled samples") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    lines = [line.strip() for line in block.splitlines() if line.strip().startswith("python -m ")]
    return [shlex.split(line.replace("$SHARED", str(shared)).replace("$WORK", str(work))) for line in lines]


def test_walkthrough_runs_end_to_end(shared_data, tmp_path):
    commands = walkthrough_commands(shared_data, tmp_path)
    assert len(commands) >= 8
    for argv in commands:
        module = importlib.import_module(argv[2])
        assert module.main(argv[3:]) == 0, " ".join(argv)

    hit = yaml.safe_load((tmp_path / "hit_uav" / "dataset.yaml").read_text())
    assert set(hit["classes"]) == set((shared_data / "hit_uav" / "classes_yolo.txt").read_text().split())
    task = yaml.safe_load((tmp_path / "hit_uav_yolo" / "task.yaml").read_text())
    assert task["options"]["classes"] == hit["classes"] and task["options"]["scratch_init"] is True
    rows = pd.read_csv(tmp_path / "bench_hit_uav" / "results.csv")
    assert set(rows.dataset) == {"hit_uav"} and rows.error.isna().all()
    det = rows[rows.task == "detection"]
    per_class = set(det["class"]) - {"all"}
    assert per_class and per_class <= set(hit["classes"])  # the data set's own names
    assert {"mAP50-95", "mAP50", "APs"} <= set(det.metric) and det["flags"].str.contains("scratch_init").all()
    assert rows[rows.metric == "psnr"]["n"].tolist() == [4, 4]
    report = tmp_path / "bench_hit_uav" / "report"
    assert (report / "radar_detection_hit_uav.png").is_file()
    assert list((report / "paper" / "figures").glob("fig4_hit_uav_*.png"))

    coco = yaml.safe_load((tmp_path / "m3fd_coco" / "dataset.yaml").read_text())
    yolo = yaml.safe_load((tmp_path / "m3fd_yolo" / "dataset.yaml").read_text())
    assert coco["classes"] == ["People", "Car", "Motorcycle", "Bus", "Truck", "Lamp"]  # category ids 1..6
    assert yolo["classes"] == (shared_data / "m3fd" / "classes_yolo.txt").read_text().split()
    assert coco["provenance"]["boxes"] == yolo["provenance"]["boxes"]  # the same 147 boxes

    seg = pd.read_csv(tmp_path / "bench_sirst" / "results.csv")
    seg = seg[seg.task == "segmentation"]
    assert {"IoU", "mIoU", "aAcc", "nIoU", "Pd", "Fa"} <= set(seg.metric) and seg.error.isna().all()
    assert set(seg[seg.metric == "IoU"]["class"]) <= {"background", "target"}
    assert seg["flags"].str.contains("scratch_init").all()
    figures = tmp_path / "bench_sirst" / "report" / "paper" / "figures"
    assert list(figures.glob("fig[45]_sirst_*.png")) and list(figures.glob("fig6_segmentation_sirst.png"))
