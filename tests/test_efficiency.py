"""The efficiency table: parameters and FLOPs against hand-computed counts, the random-weights flag, the run's
efficiency step (fresh processes, reuse on a rerun) and the reports that render it with the papers' numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from sr.base import SRMethod
from sr.errors import UserError
from sr.vocab import COL_GFLOPS, COL_PARAMS_M, EFFICIENCY_COLUMNS, EFFICIENCY_FILE, FLAG_RANDOM_WEIGHTS


class ConvShuffle(SRMethod):
    """x4 by one 3x3 convolution 1 -> 16 channels and a pixel shuffle: 160 parameters, 2 * 16 * 9 FLOPs per LR
    pixel (a multiply-add is 2; the bias adds and the shuffle are not counted by torch's counter)."""

    def __init__(self, **kw):
        super().__init__("conv_shuffle", 4, **kw)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.PixelShuffle(4))
        self.helper = ConvHelper()  # a second holder of the same network: counted once

    def _upscale(self, x):
        return torch.sigmoid(self.net(x))


class ConvHelper:
    def __init__(self):
        self.model = None


def test_parameters_and_flops_equal_the_hand_computed_counts():
    from benchmarks.speed.efficiency import measure_method

    method = ConvShuffle()
    method.helper.model = method.net
    row = measure_method(method, (40, 24), channels=1, warmup=0, repeat=2)
    assert row["status"] == "ok" and row["size_out"] == "160x96" and row["repeats"] == 2
    assert row[COL_PARAMS_M] * 1e6 == pytest.approx(16 * 9 + 16)
    assert row[COL_GFLOPS] * 1e9 == pytest.approx(2 * 16 * 9 * 40 * 24)
    assert row["latency_ms"] > 0 and row["flags"] == ""


def test_a_random_weight_method_carries_the_flag_and_the_reference_row_is_skipped():
    import sr
    from benchmarks.speed.efficiency import measure_method

    assert measure_method(ConvShuffle(random_weights=True), (8, 8), warmup=0, repeat=1)["flags"] == FLAG_RANDOM_WEIGHTS
    skipped = measure_method(sr.load_method("hr"), (8, 8), warmup=0, repeat=1)
    assert skipped["status"] == "skipped" and COL_GFLOPS not in skipped


def test_networks_of_a_method_that_holds_another(monkeypatch):
    """A method holding another SR method (UPSR's prior) counts that one's networks too, each tensor once."""
    from benchmarks.speed.efficiency import networks, parameter_count

    outer, inner = ConvShuffle(), ConvShuffle()
    outer.prior = inner
    outer.shared = outer.net
    assert parameter_count(networks(outer)) == 2 * 160


def test_rows_are_merged_and_an_ok_row_of_the_same_definition_is_reused(tmp_path, monkeypatch):
    """A second call reuses the ok rows of the same method definition, size and device (nothing measured), measures
    a new size and an earlier error again, and keeps the rows it was not asked about; the CSV has the shared
    columns. (The measurement itself is stubbed here; the fresh-process path is the slow test below.)"""
    import benchmarks.speed.efficiency as eff

    calls = []

    def fake(method, size, cfg, timeout):
        calls.append((method, size))
        status = "error" if method == "sinsr" else "ok"
        return {"method": method, "size": size, "status": status, COL_PARAMS_M: 1.0, "latency_ms": 2.0}

    monkeypatch.setattr(eff, "measure", fake)
    out = tmp_path / EFFICIENCY_FILE
    eff.measure_all(["bicubic", "sinsr", "nearest"], ["16x12"], "cpu", out=out)
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        first = list(reader)
    assert tuple(reader.fieldnames) == EFFICIENCY_COLUMNS and len(first) == 3
    assert all(r["config"] == eff.method_digest(r["method"]) and r["device"].startswith("cpu (") for r in first)
    calls.clear()
    eff.measure_all(["bicubic", "sinsr"], ["16x12", "8x8"], "cpu", out=out)
    assert calls == [("bicubic", "8x8"), ("sinsr", "16x12"), ("sinsr", "8x8")]
    with open(out, newline="") as fh:
        keys = sorted((r["method"], r["size"]) for r in csv.DictReader(fh))
    assert keys == sorted([(m, s) for m in ("bicubic", "sinsr") for s in ("16x12", "8x8")] + [("nearest", "16x12")])


@pytest.mark.slow
def test_each_size_is_measured_in_a_fresh_process(tmp_path):
    """The real path: a child process per (method, size); a method that cannot be built is a row saying why."""
    import benchmarks.speed.efficiency as eff

    out = tmp_path / EFFICIENCY_FILE
    empty = str(tmp_path / "no_weights")
    rows = eff.measure_all(["bicubic", "sinsr"], ["16x12"], "cpu", out=out, weights_dir=empty, warmup=0, repeat=1)
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert "no_weights" in rows[1]["note"]  # the missing file's directory, as the method's build error says
    with open(out, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert written[0]["size_out"] == "64x48" and float(written[0][COL_PARAMS_M]) == 0
    assert written[0]["device"].startswith("cpu (") and "threads" in written[0]["device"]


def _efficiency_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(EFFICIENCY_COLUMNS), restval="")
        writer.writeheader()
        writer.writerows(rows)


def test_the_table_renders_measurements_with_the_papers_numbers_beside(tmp_path):
    from reports.efficiency import efficiency_table

    assert efficiency_table(tmp_path) is None  # a run without the step: no table
    base = {"device": "cpu (X, 2 threads)", "threads": "2", "repeats": "3", "status": "ok", "config": "d"}
    _efficiency_csv(
        tmp_path / EFFICIENCY_FILE,
        [
            {**base, "method": "sinsr", "size": "64x64", "size_out": "256x256", COL_PARAMS_M: "173.9111"}
            | {COL_GFLOPS: "1234.5", "latency_ms": "5012.3", "peak_gib": "1.25", "flags": FLAG_RANDOM_WEIGHTS},
            {**base, "method": "resshift_v3", "size": "64x64", "status": "error", "note": "weights file missing"},
        ],
    )
    table = efficiency_table(tmp_path)
    v = table.values
    sinsr = v[v["Method"].str.startswith("SinSR")]
    assert list(sinsr["Source"]) == ["measured (this run)", "SinSR: HF-Diff Table 5", "SinSR-1: UPSR supp. Table 7"]
    assert sinsr.iloc[0]["Params (M)"] == "173.91" and sinsr.iloc[0]["Size (LR → SR)"] == "64x64 → 256x256"
    assert sinsr.iloc[2]["Params (M)"] == "174" and sinsr.iloc[2]["Latency (ms)"] == "141"
    assert "4.03 GB" in sinsr.iloc[2]["Peak memory (GiB)"] and sinsr.iloc[0]["Method"].endswith("†")
    missing = v[v["Source"] == "measured (this run)"].iloc[1]
    assert missing["Params (M)"] == "" and "weights file missing" in missing["Note"]
    md = table.markdown()
    assert "Efficiency" in md and "flop_counter" in md and "random weights" in md

    (tmp_path / EFFICIENCY_FILE).write_text("method,size\nx,1x1\n")
    with pytest.raises(UserError, match=EFFICIENCY_FILE):
        efficiency_table(tmp_path)


@pytest.mark.slow
def test_the_run_step_writes_the_csv_and_every_report_shows_it(tmp_path):
    """benchmarks.run --efficiency measures the run's methods at the CPU size and the data set's LR size (demo:
    80x60) into efficiency.csv; report.md, the per-table files and the paper report render it."""
    from benchmarks.run import main as run_main
    from reports.paper import build_paper_report

    out = tmp_path / "run"
    quick = ["--tasks", "quality", "--metrics", "psnr", "--limit", "1", "--quiet", "--device", "cpu"]
    assert run_main(["--methods", "bicubic", "--out", str(out), "--efficiency", *quick]) == 0
    eff = pd.read_csv(out / EFFICIENCY_FILE)
    assert list(eff["size"]) == ["64x64", "80x60"] and set(eff["status"]) == {"ok"}
    assert all(math.isfinite(x) for x in eff["latency_ms"])
    assert "Efficiency" in (out / "report" / "report.md").read_text()
    assert (out / "report" / "efficiency.csv").is_file()
    build_paper_report(out / "results.csv", tmp_path / "paper", qualitative=False)
    assert "80x60 → 320x240" in (tmp_path / "paper" / "paper.md").read_text()
    assert "Efficiency" in (tmp_path / "paper" / "report.html").read_text()
