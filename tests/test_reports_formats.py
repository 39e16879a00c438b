"""The run's own tables are built once and read the same in every format: report.md, report.html (parsed with the
standard library's html.parser), and the per-table md / tex / csv files (same titles, same cells, same marks)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd

from downstream.evidence import Evidence, evidence_path, write_evidence
from reports.build import build_reports
from sr.vocab import COL_DEGRADATION, FLAG_MARKS, FLAG_NOTES, FLAG_RANDOM_WEIGHTS, RESULT_COLUMNS

IDS = [f"f{i:02d}" for i in range(24)]
SHIFT = {"bicubic": 0.0, "lanczos": 1.5, "nearest": -2.0, "rnd": 9.0, "hr": 20.0}  # rnd: random weights
SECTIONS = ("Results of this run", "Run")
PROBLEM = "weights missing: put <dat.pth> in ~/w & retry"


def _make_run(run):
    """Quality means with per-image samples (so marks and significance are computed), detection per-class rows
    with intervals but no samples, a random-weights method, and one row that was not computed."""
    rng = np.random.default_rng(3)
    base = {"psnr": rng.normal(30, 1, len(IDS)), "ssim": rng.uniform(0.6, 0.8, len(IDS))}
    rows = []
    for i, (method, shift) in enumerate(SHIFT.items()):
        flags = FLAG_RANDOM_WEIGHTS if method == "rnd" else ""
        evidence = Evidence(ids=IDS, seed=11)
        for metric, values in base.items():
            v = values + shift * (1.0 if metric == "psnr" else 0.01) + rng.normal(0, 0.05, len(IDS))
            evidence.values[("quality", metric, "all")] = v
            rows.append(["s", "ds", method, "quality", metric, "all", v.mean(), len(IDS), v.mean() - 0.3])
            rows[-1] += [v.mean() + 0.3, flags, ""]
        write_evidence(evidence_path(run, "ds", method), evidence)
        for j, cls in enumerate(("all", "car", "person")):
            value = 0.3 + 0.02 * i + 0.1 * j
            rows.append(["s", "ds", method, "detection", "mAP50-95", cls, value, 5, value - 0.05, value + 0.05])
            rows[-1] += [flags, ""]
    rows.append(["s", "ds", "dat", "sr", "unavailable", "all", np.nan, 0, np.nan, np.nan, "", PROBLEM])
    # rows without the degradation column (read as bicubic)
    pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c != COL_DEGRADATION]).to_csv(
        run / "results.csv", index=False
    )
    methods = {"bicubic": {}, "rnd": {"weights": {"net": "0f" * 32}, "flags": [FLAG_RANDOM_WEIGHTS]}}
    (run / "run.json").write_text(json.dumps({"suite": "s", "seed": 5, "versions": {"torch": "2"}, "methods": methods}))
    return run / "results.csv"


def _md_tables(text: str) -> dict[str, list[list[str]]]:
    """## title -> body rows (cell texts) of the table under it ([] when the section has none)."""
    tables: dict[str, list[list[str]]] = {}
    title = None
    for line in text.splitlines():
        if line.startswith(("## ", "### ")):
            title = line.split(" ", 1)[1].replace("`", "")
            tables[title] = []
        elif title and line.startswith("|"):  # cells as a markdown viewer shows them (reports.escape.md_text undone)
            cells = line.strip().strip("|").split("|")
            tables[title].append([html.unescape(re.sub(r"\\([\\`\[\]])", r"\1", c.strip())) for c in cells])
    return {t: rows[2:] for t, rows in tables.items()}  # header and separator rows dropped


class _Page(HTMLParser):
    """h2 / h3 title -> body rows of its table, in the sections "Results of this run" and "Run"; bold / italic
    cells are recorded as **x** / _x_, the markdown spelling."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.section = self.heading = self.title = None
        self.text = ""
        self.tables: dict[str, list[list[str]]] = {}
        self.in_body = self.cell = False
        self.wrap = ""

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "h3"):
            self.heading, self.text = tag, ""
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body and self.section in SECTIONS:
            self.tables[self.title].append([])
        elif tag in ("td", "th") and self.in_body and self.section in SECTIONS:
            self.cell, self.text = True, ""
        elif tag in ("b", "i") and self.cell:
            self.wrap = "**" if tag == "b" else "_"
            self.text += self.wrap

    def handle_endtag(self, tag):
        if tag == self.heading:
            if tag == "h2":
                self.section = self.text
            self.title, self.heading = self.text, None
            if self.section in SECTIONS:
                self.tables[self.title] = []
        elif tag == "tbody":
            self.in_body = False
        elif tag in ("b", "i") and self.cell:
            self.text += self.wrap
        elif tag in ("td", "th") and self.cell:
            self.tables[self.title][-1].append(self.text.strip())
            self.cell = False

    def handle_data(self, data):
        if self.heading or self.cell:
            self.text += data


def test_report_md_html_and_table_files_show_the_same_tables(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    out = build_reports(_make_run(run), run / "report", reference="bicubic")
    report_md = (out / "report.md").read_text(encoding="utf-8")
    page = _Page()
    page.feed((out / "paper" / "report.html").read_text(encoding="utf-8"))
    md = _md_tables(report_md)
    html = page.tables

    titles = [
        "Image quality (mean over images; reference metrics, then no-reference)",
        "Detection: mAP50-95 per class",
        "Not computed, and why",
        "Run",
        "Method weights (sha256)",
    ]
    assert [t for t in html if html[t]] == titles and [t for t in md if t in titles] == titles
    for title in titles:
        assert html[title] == md[title] and md[title], title

    quality = {row[0]: row[1:] for row in md[titles[0]]}
    dagger = FLAG_MARKS[FLAG_RANDOM_WEIGHTS]
    assert set(quality) == {"bicubic", "lanczos", "nearest", f"rnd {dagger}", "hr"}
    psnr = {label: cells[0] for label, cells in quality.items()}
    assert psnr["lanczos"].startswith("**") and psnr["bicubic"].startswith("_")  # best and second, significant
    assert not psnr[f"rnd {dagger}"].startswith(("**", "_")) and not psnr["hr"].startswith(("**", "_"))
    assert re.fullmatch(r"\*\*\d+\.\d{4}\*\* \[\d+\.\d{4}, \d+\.\d{4}\]", psnr["lanczos"])
    detection = {row[0]: row[1:] for row in md[titles[1]]}
    assert all(re.fullmatch(r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", c) for c in detection["nearest"])  # no samples
    assert md[titles[2]] == [["ds", "dat", "sr", "unavailable", "all", PROBLEM]]
    # significance: a sentence and the pictures, no table of rows (every row is in significance.csv)
    assert "## Significance against `bicubic`" in report_md and not md.get("Significance against bicubic")
    assert "`significance.csv`" in report_md and "## Significance pictures" in report_md
    assert FLAG_NOTES[FLAG_RANDOM_WEIGHTS] in report_md
    assert ["seed", "5"] in md["Run"] and ["rnd", "net", f"{'0f' * 32} [{FLAG_RANDOM_WEIGHTS}]"] in md[titles[-1]]

    for stem, title in (("quality", titles[0]), ("detection_per_class", titles[1]), ("problems", titles[2])):
        own = (out / f"{stem}.md").read_text(encoding="utf-8")
        assert own.startswith(f"## {title}\n") and own in report_md  # the file is the report's section
        tex = (out / f"{stem}.tex").read_text(encoding="utf-8")
        assert f"\\caption{{{title}}}" in tex.replace("\\%", "%")
    best, second = (re.search(r"\d+\.\d{4}", psnr[m]).group() for m in ("lanczos", "bicubic"))
    tex = (out / "quality.tex").read_text(encoding="utf-8")
    assert f"\\textbf{{{best}}}" in tex and f"\\textit{{{second}}}" in tex
    csv = pd.read_csv(out / "quality.csv", header=[0, 1], index_col=0)
    assert f"{csv.loc['lanczos', ('ds', 'psnr')]:.4f}" == best


def test_a_run_json_nested_too_deep_is_reported_unreadable_not_a_crash(tmp_path):
    """run.json beside a results.csv handed to the report is read within sr.safeparse's bounds, like any user JSON."""
    from reports.runinfo import info_tables
    from sr.safeparse import MAX_JSON_DEPTH

    (tmp_path / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    df = pd.DataFrame([{c: "x" for c in RESULT_COLUMNS}])
    run = info_tables(tmp_path / "results.csv", df)[0]
    assert run.text.startswith("run.json unreadable: ") and f"limit of {MAX_JSON_DEPTH}" in run.text
