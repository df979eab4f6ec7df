"""`build_report(workdirs, out)`: report.md and its PNGs from run workdirs.

Sections run in a fixed order; a section or figure whose data no run has becomes a one-line
note, and a section that fails (e.g. a summary written by an older pipeline with an unexpected
layout) becomes a note with the error instead of stopping the report.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Sequence

from crimp_jax.report import figures, tables
from crimp_jax.report.runs import load_runs

log = logging.getLogger(__name__)

SECTIONS = (  # (heading, table function, figure functions, what a missing figure lacks)
    ("Runs", tables.runs_section, (), ""),
    ("Accuracy", tables.accuracy_section, (), ""),
    ("Training", tables.stages_section, (figures.training_curves,),
     "per-epoch test accuracy in metrics.jsonl"),
    ("Monte Carlo robustness", tables.montecarlo_section, (figures.accuracy_vs_sigma,),
     "'montecarlo' curves"),
    ("Analog periphery and drift", tables.periphery_section, (figures.periphery_sweeps,),
     "'montecarlo' ADC, DAC or drift sweeps"),
    ("Sparsity", tables.sparsity_section, (figures.sparsity_per_layer,),
     "per-layer 'prune' rows"),
    ("Crossbars", tables.crossbars_section, (figures.crossbar_occupancy,),
     "per-layer crossbar counts ('prune' or 'cost')"),
    ("Power and area", tables.cost_section, (figures.cost_breakdown,), "'cost'"),
)


def _guarded(fn, *args):
    """fn(*args), or (None, note) if it raises: one bad section must not lose the others."""
    try:
        return fn(*args), None
    except Exception as e:  # noqa: BLE001 - reported in the document, and logged
        log.exception("report section %s failed", fn.__name__)
        return None, f"_{fn.__name__} failed: {type(e).__name__}: {e}_\n"


def build_report(workdirs: Sequence, out=None) -> Path:
    """Writes `out`/report.md (default out: the first workdir) and the figures; returns its path.

    Raises `SummaryError` (before writing anything) if a workdir has no readable summary.json.
    """
    if not workdirs:
        raise ValueError("no workdirs given: expected at least one")
    runs = load_runs(workdirs)
    out = Path(out) if out is not None else Path(workdirs[0])
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# CRIMP experiment report: {', '.join(r.name for r in runs)}\n",
             f"\nGenerated {now} by `python -m experiments.report` from "
             f"{len(runs)} workdir(s). Every number below is read from each workdir's "
             "summary.json and metrics.jsonl (differences and ratios are computed from them).\n"]
    for heading, table_fn, figure_fns, needs in SECTIONS:
        lines.append(f"\n## {heading}\n\n")
        body, err = _guarded(table_fn, runs)
        lines.append(err or body)
        for fig_fn in figure_fns:
            files, err = _guarded(fig_fn, runs, out)
            if err:
                lines.append("\n" + err)
            elif not files:
                lines.append(f"\n_No figure: no run has {needs}._\n")
            for name, caption in files or ():
                lines.append(f"\n![{caption}]({name})\n\n*{caption}*\n")
    path = out / "report.md"
    path.write_text("".join(lines))
    return path
