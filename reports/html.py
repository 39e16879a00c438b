"""A self-contained HTML report: tables (paper | ours | Δ), figures embedded as data URIs, run metadata.

``write_html_report(path, df, tables, figures, results_csv, results=...)``: the paper's tables, then the run's
own tables (the ``reports.report_table.ReportTable`` objects report.md is rendered from), figures, run.
Opens from disk with no network and no other file: every image is a ``data:image/png;base64,...`` URI, the CSS
and the one script are inline. The script runs on ``load`` and sets ``document.title`` to ``images-ok:N`` when
all N images decoded (``naturalWidth > 0``), else ``images-broken:K/N``; ``body[data-images]`` carries the same,
so a headless browser (``chromium --dump-dom``) can check the page.

Run metadata: ``run.json`` next to the results.csv: suite, seed, device, versions, tasks (config + weights sha256),
the flags found in the results (random weights) and a table of every method's weights sha256
(``reports.runinfo``), then run.json as it is.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path

import pandas as pd

from reports.paper_tables import PaperTable, paper_html
from reports.report_table import ReportTable, inline_html
from reports.tables import FLAGS_LEAD, flag_notes, flags_in

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1600px}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse;font-size:12px;margin:4px 0;display:block;max-width:100%;overflow-x:auto}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:normal;overflow-wrap:break-word}
td{min-width:4em} td:last-child{max-width:60em}
thead th{background:#f0f0f0;text-align:center} tbody th{text-align:left;background:#fafafa}
th.ours{background:#e6f0ff} th.d{background:#f7f7f7}
tr.random{background:#fff1e0}
ul.notes{font-size:12px;color:#555;margin:4px 0 12px}
.warn{background:#fff1e0;border:1px solid #f0a040;padding:8px;margin:8px 0}
figure{display:inline-block;margin:8px;vertical-align:top;max-width:760px}
figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:12px;color:#444}
pre{font-size:12px;background:#f7f7f7;padding:8px;overflow:auto}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  var state = bad ? ('images-broken:' + bad + '/' + imgs.length) : ('images-ok:' + imgs.length);
  document.title = state;
  document.body.setAttribute('data-images', state);
  var root = document.documentElement;  /* wide tables wrap or scroll inside the page, never widen it */
  document.body.setAttribute('data-fits', root.scrollWidth <= root.clientWidth ? 'yes' : 'no:' + root.scrollWidth);
});
"""


def data_uri(path: str | Path) -> str:
    path = Path(path)
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
    return f"data:{mime.get(path.suffix.lower(), 'application/octet-stream')};base64," + base64.b64encode(
        path.read_bytes()
    ).decode("ascii")


def _metadata(df: pd.DataFrame, results_csv: Path) -> str:
    """The Run section (the tables report.md shows), then run.json as it is."""
    from reports import runinfo

    tables = runinfo.info_tables(results_csv, df)
    out = "".join(t.html(level=2 if i == 0 else 3) for i, t in enumerate(tables))
    meta = runinfo.run_meta(results_csv.parent)
    if meta is not None:
        out += "<h3>run.json</h3><pre>" + html.escape(json.dumps(meta, indent=2, default=str)) + "</pre>"
    return out


def write_html_report(
    path: str | Path,
    df: pd.DataFrame,
    tables: list[PaperTable],
    figures: list[tuple[str, Path]],
    results_csv: str | Path,
    skipped: list[str] | tuple[str, ...] = (),
    results: list[ReportTable] | tuple = (),
) -> Path:
    """``tables``: the paper's tables; ``results``: the run's own tables (``reports.run_tables.run_tables``, the
    ones report.md shows)."""
    path, results_csv = Path(path), Path(results_csv)
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset='utf-8'><title>DifIISR report</title>"
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body data-images='pending'>",
        "<h1>DifIISR: paper tables and figures, regenerated</h1>",
        f"<p>Made {_dt.datetime.now().isoformat(timespec='seconds')} from <code>{html.escape(str(results_csv))}"
        "</code> by <code>python -m reports.paper</code>.</p>",
    ]
    notes = flag_notes(flags_in(df))
    if notes:
        parts.append(
            f"<div class=warn>{inline_html(FLAGS_LEAD)}<ul>"
            + "".join(f"<li>{inline_html(n)}</li>" for n in notes)
            + "</ul>Rows made with random weights are shaded in the paper tables.</div>"
        )
    parts.append("<h2>Tables</h2>")
    parts += [paper_html(t) for t in tables]
    if results:
        parts += ["<h2>Results of this run</h2>", *(t.html() for t in results)]
    parts.append("<h2>Figures</h2>")
    if not figures:
        parts.append("<p>No figures (no per-class task results and no SR images).</p>")
    for caption, png in figures:
        parts.append(
            f"<figure><img src='{data_uri(png)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if skipped:
        parts.append("<h3>Figures not made</h3><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in skipped) + "</ul>")
    parts.append(_metadata(df, results_csv))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
