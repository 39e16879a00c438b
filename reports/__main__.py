"""``python -m reports --results RESULTS.csv --out DIR [--reference METHOD]``: regenerate tables, plots, intervals
and significance.csv from a run's results.csv and its per-image samples (no model is re-run)."""

from __future__ import annotations

import sys

from reports.build import build_reports
from reports.significance import DEFAULT_REFERENCE
from reports.tables import load_results
from sr import cli
from sr.cli import cli_entry
from sr.errors import UnknownNameError
from sr.ownership import add_overwrite_option, check_apart
from sr.vocab import COL_METHOD, OPT_REFERENCE


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m reports", description=__doc__)
    p.add_argument("--results", type=cli.existing_file, required=True, help="a results.csv written by benchmarks.run")
    p.add_argument(
        "--out", type=cli.out_dir, required=True, help="directory for tables (md/csv/tex) and plots (png/svg)"
    )
    p.add_argument(
        OPT_REFERENCE,
        default=None,
        help="method every other one is compared with in significance.csv (paired bootstrap over images; "
        f"default: {DEFAULT_REFERENCE})",
    )
    add_overwrite_option(p)
    args = p.parse_args(argv)
    if args.reference is not None:
        methods = sorted(set(load_results(args.results)[COL_METHOD].astype(str)))
        if args.reference not in methods:
            raise UnknownNameError(f"{OPT_REFERENCE} method (not in {args.results})", args.reference, methods)
    check_apart(args.out, [args.results])
    out = build_reports(args.results, args.out, reference=args.reference or DEFAULT_REFERENCE, overwrite=args.overwrite)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
