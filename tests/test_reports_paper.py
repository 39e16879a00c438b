"""Paper tables and Figure 6 regenerated from a results.csv alone; the transcribed paper numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reports.paper import build_paper_report, main
from reports.paper_tables import TABLES, build_table, paper_numbers

# (table, row, column) -> value, read by hand from ../shared/papers (001 = main, 000 = supplement)
PAPER_CELLS = {
    ("main_table1", "Low Resolution", "Set5/CLIP-IQA"): 0.2167,
    ("main_table1", "ESRGAN", "Set20/MUSIQ"): 36.654,
    ("main_table1", "SinSR", "Set5/MUSIQ"): 54.355,
    ("main_table1", "DifIISR", "Set15/CLIP-IQA"): 0.5906,
    ("main_table1", "High Resolution", "Set20/MUSIQ"): 32.024,
    ("main_table1", "Bi-DiffSR", "Set20/CLIP-IQA"): 0.2674,
    ("main_table2", "SinSR", "Set20/PSNR"): 33.438,
    ("main_table2", "DifIISR", "Set15/SSIM"): 0.8578,
    ("main_table2", "ResShift", "Set5/LPIPS"): 0.3179,
    ("main_table3", "perceptual", "mIoU"): 42.2,
    ("main_table3", "visual", "PSNR"): 34.528,
    ("main_table4", "perceptual+visual_sum", "PSNR"): 34.061,
    ("main_table4", "visual+task_sum", "mIoU"): 41.9,
    ("supp_table1", "RealESRGAN", "TNO/MUSIQ"): 48.3307,
    ("supp_table1", "CoRPLE", "RoadScene/MUSIQ"): 27.701,
    ("supp_table1", "DifIISR", "RoadScene/CLIP-IQA"): 0.5302,
    ("supp_table2", "mse", "PSNR"): 34.244,
    ("supp_table3", "edge", "PSNR"): 33.823,
    ("supp_table3", "lpips", "mAP"): 32.7,
}


def test_paper_numbers_match_the_paper_text():
    pn = paper_numbers()
    for (table, row, column), expected in PAPER_CELLS.items():
        hit = pn[(pn.table == table) & (pn.row == row) & (pn.column == column)]
        assert len(hit) == 1, (table, row, column)
        assert hit.number.iloc[0] == expected, (table, row, column)


def test_paper_numbers_are_complete():
    pn = paper_numbers()
    sizes = pn.groupby("table").size().to_dict()
    assert sizes == {
        "main_table1": 14 * 6,
        "main_table2": 4 * 9,
        "main_table3": 4 * 4,
        "main_table4": 6 * 4,
        "supp_table1": 14 * 4,
        "supp_table2": 4 * 4,
        "supp_table3": 4 * 4,
    }
    assert pn.source.str.match(r"^(main|supp):\d+$").all()
    assert not pn.duplicated(["table", "row", "column"]).any()
    for spec in TABLES:  # every paper column is a column of the regenerated table
        assert set(pn[pn.table == spec.key].column) == {c.name for c in spec.columns}


METHODS = ["hr", "esrgan", "sinsr", "difiisr", "bicubic", "difiisr_t3_none", "difiisr_t3_visual"]
DETECTION_CLASSES = ["People", "Car", "Bus", "Lamp", "Motorcycle", "Truck"]


def make_results(path, random_method="esrgan"):
    rows = []

    def add(ds, m, task, metric, cls, v, flags="", error=""):
        rows.append(
            {
                "suite": "paper",
                "dataset": ds,
                "method": m,
                "task": task,
                "metric": metric,
                "class": cls,
                "value": v,
                "n": 5,
                "flags": flags,
                "error": error,
            }
        )

    for k, m in enumerate(METHODS):
        flags = "random_weights" if m == random_method else ""
        for ds in ("m3fd_set5", "m3fd_set15", "m3fd_set20", "tno", "roadscene", "m3fd_test"):
            for metric, base in (("clipiqa", 0.3), ("musiq", 40.0), ("psnr", 30.0), ("ssim", 0.8), ("lpips", 0.3)):
                add(ds, m, "quality", metric, "all", base + 0.01 * k, flags)
        add("m3fd_test", m, "detection", "mAP50-95", "all", 0.30 + 0.01 * k, flags)
        for j, c in enumerate(DETECTION_CLASSES):
            add("m3fd_test", m, "detection", "mAP50-95", c, 0.2 + 0.05 * j + 0.01 * k, flags)
        add("fmb_test", m, "segmentation", "mIoU", "all", 0.40 + 0.01 * k, flags)
        for j, c in enumerate(["Car", "Person", "Truck"]):
            add("fmb_test", m, "segmentation", "IoU", c, 0.3 + 0.1 * j + 0.01 * k, flags)
    add("m3fd_set5", "dat", "sr", "unavailable", "all", math.nan, error="weights missing")
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_tables_and_figure6_from_results_csv_alone(tmp_path):
    (tmp_path / "run").mkdir()
    results = make_results(tmp_path / "run" / "results.csv")
    out = build_paper_report(results, tmp_path / "paper", html=False, qualitative=False)
    for spec in TABLES:
        for ext in ("md", "csv", "tex"):
            assert (out / "tables" / f"{spec.key}.{ext}").stat().st_size > 0
    for stem in ("fig6_detection_m3fd_test", "fig6_segmentation_fmb_test"):
        for ext in ("png", "svg"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 1000
    t1 = pd.read_csv(out / "tables" / "main_table1.csv", index_col=0)
    # paper order, LR row present with no result of ours, extra method appended
    assert list(t1.index[:2]) == ["Low Resolution", "ESRGAN †"]
    assert math.isnan(t1.loc["Low Resolution", "Set5/CLIP-IQA|ours"])
    assert t1.loc["Low Resolution", "Set5/CLIP-IQA|paper"] == 0.2167
    assert "Bicubic" in t1.index and "difiisr_t3_none" not in t1.index
    ours = 0.3 + 0.01 * METHODS.index("difiisr")
    assert t1.loc["DifIISR", "Set5/CLIP-IQA|ours"] == pytest.approx(ours)
    assert t1.loc["DifIISR", "Set5/CLIP-IQA|Δ"] == pytest.approx(ours - 0.6144)
    md = (out / "tables" / "main_table1.md").read_text()
    # best among our non-reference, non-random rows: bicubic (k=4) > difiisr (k=3)
    assert "**0.3400**" in md and "<u>0.3300</u>" in md and "**0.6144**" in md and "<u>0.5877</u>" in md
    assert "—" in md and "†" in md
    tex = (out / "tables" / "main_table1.tex").read_text()
    assert "\\textbf{0.6144}" in tex and "\\underline{0.5877}" in tex and "$\\dagger$" in tex
    # Table 2: diffusion methods only; LPIPS lower is better
    t2 = pd.read_csv(out / "tables" / "main_table2.csv", index_col=0)
    assert list(t2.index) == ["ResShift", "SinSR", "Bi-DiffSR", "DifIISR"]
    assert "**0.2704**" in (out / "tables" / "main_table2.md").read_text()
    # ablations: rows -> methods, mAP / mIoU in percent
    t3 = pd.read_csv(out / "tables" / "main_table3.csv", index_col=0)
    k = METHODS.index("difiisr_t3_visual")
    assert t3.iloc[1]["mAP|ours"] == pytest.approx(100 * (0.30 + 0.01 * k))
    assert t3.iloc[3]["mIoU|ours"] == pytest.approx(100 * (0.40 + 0.01 * METHODS.index("difiisr")))
    assert math.isnan(t3.iloc[2]["PSNR|ours"])  # difiisr_t3_perceptual not run
    assert t3.iloc[2]["mIoU|paper"] == 42.2
    text = (out / "paper.md").read_text()
    assert "Table 4" in text and "Supplementary Table 3" in text and "fig6_detection_m3fd_test.png" in text


def test_dataset_map_and_cli(tmp_path):
    results = make_results(tmp_path / "results.csv")
    df = pd.read_csv(results)
    df["dataset"] = df["dataset"].replace({"m3fd_set5": "synthir_demo"})
    df.to_csv(results, index=False)
    from reports.tables import load_results

    table = build_table(TABLES[0], load_results(results), {"Set5": "synthir_demo"})
    assert not math.isnan(table.values.loc["DifIISR", ("Set5/CLIP-IQA", "ours")])
    assert (
        main(
            [
                "--results",
                str(results),
                "--out",
                str(tmp_path / "o"),
                "--no-html",
                "--no-qualitative",
                "--dataset",
                "Set5=synthir_demo",
            ]
        )
        == 0
    )
    assert main(["--results", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o2")]) == 2


def test_a_failed_rebuild_leaves_the_previous_paper_report_whole(tmp_path, monkeypatch):
    """The paper report is built beside its folder and swapped in: a failure halfway (here the radar figures)
    leaves the previous report as it was, and a folder of other files is never overwritten."""
    import reports.paper as paper
    from sr.errors import UserError

    (tmp_path / "run").mkdir()
    results = make_results(tmp_path / "run" / "results.csv")
    out = build_paper_report(results, tmp_path / "paper", html=False, qualitative=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(paper, "radar_plot", broken)
    with pytest.raises(OSError, match="disk full"):
        build_paper_report(results, out, html=False, qualitative=False)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper", "run"]  # no half-built folder left beside it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="was not made by this tool as a paper report"):
        build_paper_report(results, mine, html=False, qualitative=False)
    assert (mine / "notes.txt").read_text() == "keep"


def test_low_resolution_row_in_table2_is_the_interpolated_lr_and_never_marked(tmp_path):
    """Table 2 has no Low Resolution row in the paper; ours shows method ``lr`` (LR bicubic-interpolated to HR size,
    so reference metrics exist) after the paper's rows, as a reference row left out of best / second."""
    rows = []
    for m, psnr in (("difiisr", 30.0), ("sinsr", 29.0), ("lr", 35.0)):
        for ds in ("m3fd_set5", "m3fd_set15", "m3fd_set20"):
            for metric, v in (("psnr", psnr), ("ssim", 0.8), ("lpips", 0.3), ("clipiqa", 0.2), ("musiq", 20.0)):
                rows.append(
                    dict(
                        suite="paper",
                        dataset=ds,
                        method=m,
                        task="quality",
                        metric=metric,
                        **{"class": "all"},
                        value=v,
                        n=5,
                        flags="",
                        error="",
                    )
                )
    (tmp_path / "run").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "run" / "results.csv", index=False)
    out = build_paper_report(tmp_path / "run" / "results.csv", tmp_path / "paper", html=False, qualitative=False)
    t2 = pd.read_csv(out / "tables" / "main_table2.csv", index_col=0)
    assert list(t2.index) == ["ResShift", "SinSR", "Bi-DiffSR", "DifIISR", "Low Resolution"]
    assert t2.loc["Low Resolution", "Set5/PSNR|ours"] == pytest.approx(35.0)
    assert math.isnan(t2.loc["Low Resolution", "Set5/PSNR|paper"])
    md = (out / "tables" / "main_table2.md").read_text()
    assert "**35.000**" not in md and "**30.000**" in md  # best among the methods, the reference row left out
    t1 = pd.read_csv(out / "tables" / "main_table1.csv", index_col=0)
    assert t1.loc["Low Resolution", "Set5/CLIP-IQA|ours"] == pytest.approx(0.2)
