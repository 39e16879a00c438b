"""``python -m benchmarks.regress --baseline F --results G``: fail (exit 1) when a metric dropped.

Rows are matched on (data set, method, task, metric, class). A row that got worse by more than the
metric's tolerance in ``configs/regression.yaml`` is a regression, and so is a baseline row that is
missing from the results or that became NaN / an error. Better values are reported, never failed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from reports.tables import fill_degradation, load_results
from sr import cli
from sr.cli import cli_entry
from sr.config import CONFIG_DIR, read_yaml
from sr.vocab import COL_CLASS, COL_DATASET, COL_DEGRADATION, COL_METHOD, COL_METRIC, COL_TASK, COL_VALUE

KEY = [COL_DATASET, COL_DEGRADATION, COL_METHOD, COL_TASK, COL_METRIC, COL_CLASS]


def load_tolerances(path: str | Path | None = None) -> tuple[dict[str, float], set[str]]:
    data = read_yaml(path or CONFIG_DIR / "regression.yaml")
    lower = set(data.pop("lower_is_better", []))
    return {k: float(v) for k, v in data.items()}, lower


def compare(
    baseline: pd.DataFrame, results: pd.DataFrame, tolerances: dict[str, float], lower_is_better: set[str]
) -> pd.DataFrame:
    """One row per baseline value: baseline, result, change and status (ok | better | REGRESSION)."""
    baseline, results = fill_degradation(baseline.copy()), fill_degradation(results.copy())
    base = baseline[baseline[COL_VALUE].notna() & (baseline[COL_METRIC] != "error")].set_index(KEY)[COL_VALUE]
    res = results.set_index(KEY)[COL_VALUE]
    res = res[~res.index.duplicated()]
    report = []
    for key, b in base.items():
        metric = key[KEY.index(COL_METRIC)]
        tol = tolerances.get(metric, 0.0)
        r = res.get(key, math.nan)
        sign = -1.0 if metric in lower_is_better else 1.0
        if r is None or (isinstance(r, float) and math.isnan(r)):
            status, change = "REGRESSION (missing)", math.nan
        else:
            change = (float(r) - float(b)) * sign
            status = "REGRESSION" if change < -tol else ("better" if change > tol else "ok")
        report.append(
            {**dict(zip(KEY, key)), "baseline": b, "result": r, "change": change, "tolerance": tol, "status": status}
        )
    return pd.DataFrame(report)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(
        prog="python -m benchmarks.regress",
        description=__doc__,
        formatter_class=cli.argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--baseline", type=cli.existing_file, required=True, help="committed results.csv to compare against")
    p.add_argument("--results", type=cli.existing_file, required=True, help="results.csv of the new run")
    p.add_argument(
        "--tolerances",
        type=cli.existing_file,
        default=None,
        help="YAML of per-metric tolerances (default configs/regression.yaml)",
    )
    args = p.parse_args(argv)
    baseline, results = load_results(args.baseline), load_results(args.results)
    tolerances, lower = load_tolerances(args.tolerances)
    report = compare(baseline, results, tolerances, lower)
    bad = report[report.status.str.startswith("REGRESSION")]
    print(
        f"{len(report)} values compared: {len(bad)} regressions, "
        f"{(report.status == 'better').sum()} better, {(report.status == 'ok').sum()} unchanged within tolerance"
    )
    if not bad.empty:
        print(bad.to_string(index=False))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
