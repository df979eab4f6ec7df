"""Experiment reports: markdown tables and PNG figures built from run workdirs.

runs.py (read summary.json + metrics.jsonl) -> tables.py (markdown sections) and figures.py
(PNGs) -> build.py (`build_report(workdirs, out)` writes report.md). Every number in a report is
read from the workdirs' files; a section whose data no run has is replaced by a note.
`python -m experiments.report WORKDIR [WORKDIR ...] [--out DIR]` is the command line.
"""

from crimp_jax.report.build import build_report
from crimp_jax.report.runs import Run, load_run, load_runs

__all__ = ["build_report", "Run", "load_run", "load_runs"]
