"""Markdown report with figures from run workdirs.

  python -m experiments.report WORKDIR [WORKDIR ...] [--out DIR]

Writes DIR/report.md and its PNGs (DIR defaults to the first WORKDIR): accuracy (FP,
fake-quant, integer engine, pruned, CRIMP), Monte Carlo statistics, sparsity, crossbars, power
and area tables; accuracy vs sigma, per-layer sparsity, crossbar occupancy, cost breakdown and
training-curve figures; whatever the workdirs contain. Exits 2 with one line if a workdir has
no summary.json.
"""

from __future__ import annotations

import argparse
import sys

from crimp_jax.report import build_report
from crimp_jax.summary import SummaryError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.report",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+", metavar="WORKDIR",
                        help="run directories holding summary.json (and metrics.jsonl)")
    parser.add_argument("--out", default=None,
                        help="output directory for report.md and PNGs (default: first WORKDIR)")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.workdirs, args.out)
    except SummaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
