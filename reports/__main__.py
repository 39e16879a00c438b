"""``python -m reports --results RESULTS.csv --out DIR``: regenerate tables and plots."""
from __future__ import annotations

import sys

from reports.build import build_reports
from sr import cli
from sr.cli import cli_entry


@cli_entry
def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(prog="python -m reports", description=__doc__)
    p.add_argument("--results", type=cli.existing_file, required=True, help="a results.csv written by benchmarks.run")
    p.add_argument("--out", type=cli.out_dir, required=True,
                   help="directory for tables (md/csv/tex) and plots (png/svg)")
    args = p.parse_args(argv)
    out = build_reports(args.results, args.out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
