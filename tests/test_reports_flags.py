"""A flagged result row reaches every table as its mark, with the flag's footnote: md, csv, tex and html.

The flags and marks come from ``sr.vocab`` (the one vocabulary producers and reports share); a flag the
vocabulary does not know still gets a mark (``*``) and a note naming it.
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import pandas as pd

from benchmarks.run import main as run_main
from reports.build import build_reports
from reports.tables import TEX_MARKS, load_results
from sr.vocab import (
    COL_CI_HIGH,
    COL_CI_LOW,
    COL_DEGRADATION,
    COL_FLAGS,
    FLAG_CLASS_ABSENT_IN_TRAINING,
    FLAG_MARKS,
    FLAG_NOTES,
    FLAG_RANDOM_WEIGHTS,
    FLAG_UNKNOWN_MARK,
    FLAG_VOID_TASK,
    OPT_RANDOM_WEIGHTS,
    RESULT_COLUMNS,
    split_flags,
)

UNKNOWN = "some_new_caveat"


def _tex(mark: str) -> str:
    return TEX_MARKS.get(mark, mark)


def _row_labels_csv(path: Path) -> dict[str, str]:
    """method -> its row label in a pivot CSV written by the reports (labels are 'method <marks>')."""
    with path.open(encoding="utf-8") as fh:
        labels = [row[0] for row in csv.reader(fh) if row and row[0]]
    return {label.split(" ")[0]: label for label in labels}


def _make_results(path: Path) -> Path:
    """One method per flag (plus an unknown flag and an unflagged method), quality and per-class task rows."""
    rows = []
    methods = {f"m_{flag}": flag for flag in [*FLAG_MARKS, UNKNOWN]} | {"clean": ""}
    for i, (method, flag) in enumerate(methods.items()):
        for metric in ("psnr", "ssim"):
            rows.append(("paper", "ds", method, "quality", metric, "all", 20.0 + i, 3, flag, ""))
        for cls in ("all", "car", "person"):  # suite "paper": the run's report writes the paper tables too
            rows.append(("paper", "ds", method, "detection", "mAP50-95", cls, 0.1 * i, 3, flag, ""))
    # no intervals: no samples either; no degradation column: read as bicubic, like a results.csv of older runs
    columns = [c for c in RESULT_COLUMNS if c not in (COL_CI_LOW, COL_CI_HIGH, COL_DEGRADATION)]
    pd.DataFrame(rows, columns=columns).reindex(columns=list(RESULT_COLUMNS)).to_csv(path, index=False)
    return path


def test_every_flag_gets_its_mark_and_note_in_md_csv_tex_html(tmp_path):
    results = _make_results(tmp_path / "results.csv")
    out = build_reports(results, tmp_path / "report")
    report_md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "paper" / "report.html").read_text(encoding="utf-8")
    for stem in ("quality", "detection_per_class"):
        labels = _row_labels_csv(out / f"{stem}.csv")
        md = (out / f"{stem}.md").read_text(encoding="utf-8")
        tex = (out / f"{stem}.tex").read_text(encoding="utf-8")
        assert labels["clean"] == "clean"  # no caveat, no mark
        for flag in [*FLAG_MARKS, UNKNOWN]:
            mark = FLAG_MARKS.get(flag, FLAG_UNKNOWN_MARK)
            note = FLAG_NOTES.get(flag, UNKNOWN)
            method = f"m_{flag}"
            if stem == "detection_per_class" and flag == FLAG_CLASS_ABSENT_IN_TRAINING:
                # a property of the class, not of the method: the mark goes on the class columns, the label is clean
                assert labels[method] == method and f" {mark} |" in md.splitlines()[2] and note in md
                continue
            assert labels[method] == f"{method} {mark}"
            assert f"| {method} {mark} " in md and f"| {method} {mark} " in report_md
            assert note in md and note in report_md
            assert f"{method} {_tex(mark)} &".replace("_", "\\_") in tex and note.replace("_", "\\_") in tex
            assert f"<th>{html.escape(method)} {mark}</th>" in page and html.escape(note) in page
    # every .tex file (these tables and the paper's) is plain ASCII: it compiles with pdflatex, no extra package
    tex_files = sorted(out.rglob("*.tex"))
    assert len(tex_files) > 2
    for path in tex_files:
        assert path.read_text(encoding="utf-8").isascii(), path


def test_random_weight_rows_of_the_paper_command_carry_the_dagger(tmp_path):
    """``benchmarks.run --suite paper --datasets synthir_demo --methods bicubic,hr --random-weights`` (PSNR only and
    one frame, to keep it short): every task row is made by a random network, and each shows † everywhere."""
    out = tmp_path / "run"
    assert (
        run_main(
            [
                "--suite",
                "paper",
                "--datasets",
                "synthir_demo",
                "--methods",
                "bicubic,hr",
                OPT_RANDOM_WEIGHTS,
                "--limit",
                "1",
                "--metrics",
                "psnr",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    df = load_results(out / "results.csv")
    random_rows = df[df[COL_FLAGS].map(lambda f: FLAG_RANDOM_WEIGHTS in split_flags(f))]
    assert set(random_rows.task) >= {"detection", "segmentation"} and set(random_rows.method) == {"bicubic", "hr"}
    assert df[df.task == "quality"][COL_FLAGS].eq("").all()  # bicubic / hr PSNR: no networks, no caveat
    dagger = FLAG_MARKS[FLAG_RANDOM_WEIGHTS]
    report = out / "report"
    page = (report / "paper" / "report.html").read_text(encoding="utf-8")
    for task in sorted(set(random_rows.task)):
        labels = _row_labels_csv(report / f"{task}_per_class.csv")
        md = (report / f"{task}_per_class.md").read_text(encoding="utf-8")
        tex = (report / f"{task}_per_class.tex").read_text(encoding="utf-8")
        # a random detector / segmenter hits nothing on any method: the task is void too (its mark follows the dagger)
        rows = df[df.task == task][COL_FLAGS]
        void = FLAG_MARKS[FLAG_VOID_TASK] if rows.map(lambda f: FLAG_VOID_TASK in split_flags(f)).all() else ""
        for method in ("bicubic", "hr"):
            assert labels[method] == f"{method} {dagger}{void}"
            assert f"| {method} {dagger}{void} " in md and re.search(rf"^{method} \$\\dagger\$", tex, re.M)
            assert f"<th>{method} {dagger}{void}</th>" in page
        assert FLAG_NOTES[FLAG_RANDOM_WEIGHTS] in md and FLAG_NOTES[FLAG_RANDOM_WEIGHTS] in tex
    assert _row_labels_csv(report / "quality.csv")["bicubic"] == "bicubic"
    assert FLAG_NOTES[FLAG_RANDOM_WEIGHTS] in page


def test_rows_made_with_random_weights_are_never_marked_best():
    """A random-weight method that scores far above the others gets no best / second-best mark; the measured
    methods below it are ranked among themselves (their difference is significant)."""
    import numpy as np

    from downstream.evidence import Evidence
    from reports.run_tables import quality_interval_table

    rng = np.random.default_rng(0)
    ids = [f"f{i}" for i in range(30)]
    base = rng.normal(30.0, 1.0, len(ids))
    means = {"random_net": 60.0, "bicubic": 0.0, "nearest": -5.0}
    samples, rows = {}, []
    for method, shift in means.items():
        values = base + shift
        evidence = Evidence(ids=ids, seed=7)
        evidence.values[("quality", "psnr", "all")] = values
        samples[("synthir_demo", method)] = evidence
        flags = FLAG_RANDOM_WEIGHTS if method == "random_net" else ""
        rows.append(["demo", "synthir_demo", method, "quality", "psnr", "all", values.mean(), len(ids)])
        rows[-1] += [values.mean() - 1, values.mean() + 1, flags, ""]
    df = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c != COL_DEGRADATION])
    table = quality_interval_table(df, samples).cells("md")
    cells = {str(label): str(v) for label, v in table.iloc[:, 0].items()}
    random_cell = next(v for k, v in cells.items() if k.startswith("random_net"))
    assert "**" not in random_cell and "_" not in random_cell
    assert cells["bicubic"].startswith("**") and "**" not in cells["nearest"]
