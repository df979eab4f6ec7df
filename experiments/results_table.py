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
import json
import sys
from pathlib import Path

PUBLISHED = {"vgg16": 2.19, "resnet56": 1.26}


def _pct(x):
    return "-" if x is None else f"{100 * x:.2f}"


def table(summaries: list) -> str:
    sigmas = sorted({s for sm in summaries for s in ((sm.get("montecarlo") or {}).get("sigmas")
                                                     or [])})
    head = (["model", "method", "FP %", "deployed % (sigma 0)", "drop (pp)", "paper drop"]
            + [f"MC sigma {s:g}" for s in sigmas]
            + ["sparsity %", "crossbars", "power x", "area x", "engine agreement", "device",
               "date", "command"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for sm in summaries:
        acc = sm.get("accuracy") or {}
        mc = sm.get("montecarlo") or {}
        curves = mc.get("curves") or {}
        curve = curves.get("both") or curves.get("adaptation") or curves.get("compensation") \
            or curves.get("neither") or {}
        mc_cells = []
        for s in sigmas:
            key = f"{s:g}" if s else "0"
            c = curve.get(key) or curve.get(str(s))
            mc_cells.append(f"{_pct(c['mean'])} +/- {_pct(c['std'])} ({c['n_chips']} chips, "
                            f"{mc.get('test_images', '?')} images)" if c else "-")
        prune = sm.get("prune") or {}
        totals = prune.get("totals") or {}
        cost = sm.get("cost") or {}
        fp, dep = acc.get("fp"), sm.get("test_accuracy")
        drop = None if fp is None or dep is None else 100 * (fp - dep)
        row = [sm.get("model"), (sm.get("ablation") or "") + (" (partial)" if sm.get("partial")
                                                               else ""),
               _pct(fp), _pct(dep), "-" if drop is None else f"{drop:.2f}",
               str(PUBLISHED.get(sm.get("model"), "-"))] + mc_cells + [
            _pct(prune.get("sparsity")),
            f"{totals['tiles_dense']} -> {totals['tiles_after']}" if totals else "-",
            f"{cost['power_reduction']['original']:.1f}" if cost else "-",
            f"{cost['area_reduction']['original']:.1f}" if cost else "-",
            _pct(acc.get("engine_agreement")),
            (sm.get("device") or {}).get("kind", "-"), (sm.get("date") or "-")[:10],
            f"`{sm.get('command', '-')}`"]
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdirs", nargs="+")
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    summaries = []
    for w in a.workdirs:
        path = Path(w) / "summary.json"
        if not path.is_file():
            print(f"error: {w}: no summary.json", file=sys.stderr)
            return 2
        summaries.append(json.loads(path.read_text()))
    text = table(summaries)
    if a.out:
        Path(a.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
