"""The paper-style results table from run workdirs: python -m experiments.results_table DIR... [--out F]

One row per workdir: model, method, float accuracy, deployed accuracy (sigma 0), Monte Carlo
mean +/- std at each sigma of the run, sparsity, crossbars (dense -> after), power and area
reduction against the original model, and the run's command, device and date. Every number is
read from the workdir's summary.json; a partial summary (a run cut short) is marked as such.
Published reference (Huai et al. 2023): accuracy drops of 2.19% (VGG-16) and 1.26% (ResNet-56),
100.02x computing power and 17.37x area.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crimp_jax.summary import SummaryError, read_summary

PUBLISHED = {"vgg16": 2.19, "resnet56": 1.26}


def _pct(x):
    return "-" if x is None else f"{100 * x:.2f}"


def table(summaries: list) -> str:
    """Markdown table of `Summary` objects (one row each)."""
    sigmas = sorted({s for sm in summaries for s in sm.mc_sigmas})
    head = (["model", "method", "FP %", "deployed % (sigma 0)", "drop (pp)", "paper drop",
             "MC curve"] + [f"MC sigma {s:g}" for s in sigmas]
            + ["sparsity %", "crossbars", "power x", "area x", "engine agreement", "device",
               "date", "command"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for sm in summaries:
        curve = sm.headline_curve()
        mc_cells = []
        for s in sigmas:
            c = sm.mc(curve, s) if curve else None
            mc_cells.append(f"{_pct(c['mean'])} +/- {_pct(c['std'])} ({c['n_chips']} chips, "
                            f"{sm.get('montecarlo.test_images', '?')} images)" if c else "-")
        xbars = sm.crossbars()
        fp, dep = sm.fp_accuracy, sm.deployed_accuracy
        drop = None if fp is None or dep is None else 100 * (fp - dep)
        power, area = sm.reduction("power"), sm.reduction("area")
        row = [sm.model, (sm.method or "") + (" (partial)" if sm.partial else ""),
               _pct(fp), _pct(dep), "-" if drop is None else f"{drop:.2f}",
               str(PUBLISHED.get(sm.model, "-")), curve or "-"] + mc_cells + [
            _pct(sm.sparsity), f"{xbars[0]} -> {xbars[1]}" if xbars else "-",
            "-" if power is None else f"{power:.1f}", "-" if area is None else f"{area:.1f}",
            _pct(sm.get("accuracy.engine_agreement")), sm.get("device.kind", "-"),
            (sm.get("date") or "-")[:10], f"`{sm.get('command', '-')}`"]
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdirs", nargs="+")
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    try:
        summaries = [read_summary(w) for w in a.workdirs]
    except SummaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = table(summaries)
    if a.out:
        Path(a.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
