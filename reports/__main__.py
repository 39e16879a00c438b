"""``python -m reports --results RESULTS.csv --out DIR``: regenerate tables and plots."""
from __future__ import annotations

import argparse
import sys

from reports.build import build_reports


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    p.add_argument("--results", required=True, help="a results.csv written by benchmarks.run")
    p.add_argument("--out", required=True, help="directory for tables (md/csv/tex) and plots (png/svg)")
    args = p.parse_args(argv)
    try:
        out = build_reports(args.results, args.out)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.results}: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
