"""The degradation axis of a run: --degradations / suite 'degradations:', the results.csv key column, cache keys,
significance, the regression check and the robustness report."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.regress import compare, load_tolerances
from benchmarks.run import main as run_main
from benchmarks.suites import load_suite
from reports.escape import file_stem
from reports.tables import load_results
from sr.vocab import COL_DEGRADATION, DEGRADATION_DEFAULT, OPT_DEGRADATIONS

AXIS = "bicubic,noise@1,noise@5,stripe@3"


def _run(frames, out, *extra) -> pd.DataFrame:
    argv = ["--datasets", f"folder:{frames}", "--methods", "bicubic,nearest", "--tasks", "quality"]
    argv += ["--metrics", "psnr", "--quiet", "--out", str(out), *extra]
    assert run_main(argv) == 0
    return load_results(out / "results.csv")


def smooth_frames(folder, count: int, size: int = 64):
    """Smooth 8-bit frames (a scene SR can do well on, so that noise visibly lowers PSNR)."""
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        scene = 0.5 + 0.35 * np.sin((3 + i) * xx + 2 * yy) * np.cos(2 * yy + i)
        Image.fromarray(np.round(scene * 255).astype(np.uint8)).save(folder / f"f{i}.png")
    return folder


@pytest.fixture(scope="module")
def axis_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("axis")
    frames = smooth_frames(tmp / "frames", 3)
    first = _run(frames, tmp / "a", OPT_DEGRADATIONS, AXIS, "--no-report")
    return tmp, frames, first


def test_every_row_is_present_per_degradation_and_noise_lowers_psnr(axis_run):
    tmp, _, df = axis_run
    assert list(df.columns[:3]) == ["suite", "dataset", COL_DEGRADATION]
    psnr = df[df.metric == "psnr"].set_index([COL_DEGRADATION, "method"]).value
    assert len(psnr) == 4 * 2  # every (degradation, method)
    for method in ("bicubic", "nearest"):
        assert psnr["bicubic", method] > psnr["noise@1", method] > psnr["noise@5", method]
    from reports.robustness import write_robustness
    from reports.significance import load_evidence, significance_table

    md = write_robustness(df, tmp)
    assert "noise@5" in md.read_text() and "[" in md.read_text()  # intervals in the cells
    assert (tmp / f"robustness_{file_stem(df.dataset.iloc[0])}.png").is_file()
    sig = significance_table(df, load_evidence(tmp / "a"))
    assert set(sig[COL_DEGRADATION]) == set(AXIS.split(","))  # compared within each degradation
    assert sig.ci_low.notna().all()  # each degradation's per-image samples found


@pytest.mark.slow
def test_the_run_report_keeps_bicubic_tables_and_adds_robustness(axis_run):
    tmp, frames, df = axis_run
    _run(frames, tmp / "a", OPT_DEGRADATIONS, AXIS)  # cached; now with the report
    report = tmp / "a" / "report"
    assert (report / "robustness.md").is_file()
    quality = pd.read_csv(report / "quality.csv", header=[0, 1], index_col=0).iloc[:, 0].dropna()
    psnr = df[(df.metric == "psnr") & (df[COL_DEGRADATION] == DEGRADATION_DEFAULT)].set_index("method").value
    assert np.allclose(quality.sort_index().to_numpy(), psnr.sort_index().to_numpy(), atol=1e-4)


def test_two_runs_give_identical_results_and_reuse_the_cache(axis_run):
    tmp, frames, first = axis_run
    again = _run(frames, tmp / "a", OPT_DEGRADATIONS, AXIS, "--no-report")  # cached: same values
    fresh = _run(frames, tmp / "b", OPT_DEGRADATIONS, AXIS, "--no-report")  # recomputed in a new folder
    key = [COL_DEGRADATION, "method", "metric"]
    for other in (again, fresh):
        pd.testing.assert_frame_equal(
            first.sort_values(key).reset_index(drop=True), other.sort_values(key).reset_index(drop=True)
        )


def test_a_later_run_of_one_degradation_keeps_the_others(axis_run):
    tmp, frames, _ = axis_run
    df = _run(frames, tmp / "a", OPT_DEGRADATIONS, "noise@5", "--no-report")
    assert set(df[COL_DEGRADATION]) == set(AXIS.split(","))


def test_old_results_read_as_bicubic_and_regress_keys_on_the_degradation(axis_run, tmp_path):
    _, _, df = axis_run
    old = tmp_path / "old.csv"
    df[df[COL_DEGRADATION] == DEGRADATION_DEFAULT].drop(columns=[COL_DEGRADATION]).to_csv(old, index=False)
    back = load_results(old)
    assert set(back[COL_DEGRADATION]) == {DEGRADATION_DEFAULT}
    tolerances, lower = load_tolerances()
    assert (compare(back, df, tolerances, lower).status == "ok").all()  # matched to the bicubic rows only
    noisy = df.copy()
    noisy.loc[noisy[COL_DEGRADATION] == DEGRADATION_DEFAULT, "value"] -= 5  # bicubic rows drop, others do not
    assert (compare(back, noisy, tolerances, lower).status == "REGRESSION").all()


def test_suite_yaml_degradations_and_mistakes(tmp_path, capsys):
    suite = tmp_path / "axis.yaml"
    suite.write_text("datasets: [synthir_demo]\nmethods: [bicubic]\ndegradations: [bicubic, sensor@2]\n")
    assert load_suite(str(suite)).degradations == ("bicubic", "sensor@2")
    suite.write_text("datasets: [synthir_demo]\nmethods: [bicubic]\ndegradations: [noise]\n")
    assert run_main(["--suite", str(suite), "--quiet"]) == 2
    assert "needs a severity" in capsys.readouterr().err
    assert run_main([OPT_DEGRADATIONS, "noise@7", "--quiet"]) == 2
    assert "severity must be 1-5" in capsys.readouterr().err


def test_robustness_report_escapes_data_set_names(tmp_path):
    """A data set's name is data: in robustness.md's headings, table titles and image alt text it reads as its
    characters (reports.escape.md_text), and its plot gets a file name a markdown link can reach (file_stem)."""
    from reports.robustness import write_robustness
    from sr.vocab import RESULT_COLUMNS

    evil = "x](http://e.example/) <b>|`$y^$` ../up"
    rows = []
    for degradation, shift in (("bicubic", 0.0), ("noise@1", -0.5), ("noise@5", -2.0)):
        for method, base in (("bicubic", 30.0), ("nearest", 28.0)):
            v = base + shift
            rows.append(["s", evil, degradation, method, "quality", "psnr", "all", v, 4, v - 1, v + 1, "", ""])
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    text = write_robustness(df, tmp_path).read_text()
    pngs = [p.name for p in tmp_path.glob("*.png")]
    assert len(pngs) == 1 and pngs[0] == f"robustness_{file_stem(evil)}.png"
    assert set(pngs[0]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    safe = r"x\](http://e.example/) &lt;b&gt;\|\`$y^$\` ../up"  # md_text, written out by hand
    assert f"\n## {safe}\n" in text and f"![{safe}]({pngs[0]})" in text
    assert f"## {safe}: quality psnr" in text
    assert evil not in text and "<b>" not in text
    assert file_stem("synthir_demo") == "synthir_demo" and file_stem("a/b") != file_stem("a:b")
