"""The accuracy benchmark's table: python -m experiments.proxy_table RUNROOT [--out DIR]

Reads the runs `launch/accuracy_proxy.sh` leaves in RUNROOT (fp/, fp_long/ and one folder per
quantized run, each holding a summary.json) and writes DIR/table.json (one object per run:
method, target_sparsity, accuracy, fp_accuracy, fp_long_accuracy, drop_vs_fp_long, crossbars,
mc {sigma: {'off' | 'on': {mean, std, min}}}) and DIR/table.md, and copies each run's small
files (summary.json, metrics.jsonl, figures; no checkpoints) into DIR/<run>/. `accuracy` is
the integer engine's on the whole test set (the fake-quant accuracy where the engine did not
run). Every number is read through `crimp_jax.summary`.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from crimp_jax.summary import SummaryError, read_summary, sigma_key

RUNS = ("q", "qp50", "qp80", "qv", "crimp")  # the default rows (--runs)
COPY = ("summary.json", "metrics.jsonl", "run.log", "*.png")
OFF_ON = {"neither": "off", "adaptation": "off", "compensation": "on", "both": "on"}


def find(root: Path, name: str) -> Path:
    """The workdir of run `name`: ROOT/name or, from launch.sweep, ROOT/name/base."""
    for d in (root / name, root / name / "base"):
        if (d / "summary.json").is_file():
            return d
    raise SummaryError(f"{root / name}: no summary.json (has launch/accuracy_proxy.sh run?)")


def noise_points(accuracy: float, n: int) -> float:
    """One binomial standard deviation of an accuracy measured on n images, in points."""
    return 100 * math.sqrt(accuracy * (1 - accuracy) / n)


def rows(root: Path, names=RUNS) -> tuple[list, dict]:
    fp, fp_long = read_summary(find(root, "fp")), read_summary(find(root, "fp_long"))
    ref = {"fp_accuracy": fp.fp_accuracy, "fp_long_accuracy": fp_long.fp_accuracy,
           "fp_epochs": fp.get("epochs"), "fp_long_epochs": fp_long.get("epochs"),
           "test_images": fp.get("test_images")}
    out = []
    for name in names:
        s = read_summary(find(root, name))
        acc = s.engine_accuracy if s.engine_accuracy is not None else s.deployed_accuracy
        xb = s.crossbars()
        mc = {}
        for curve, per_sigma in s.curves().items():
            for sigma, st in per_sigma.items():
                mc.setdefault(sigma_key(sigma), {})[OFF_ON[curve]] = {
                    k: st[k] for k in ("mean", "std", "min")}
        out.append({
            "run": name, "method": s.method,
            "target_sparsity": s.get("prune.target_sparsity") if s.sparsity is not None else 0.0,
            "sparsity": s.sparsity, "accuracy": acc,
            "accuracy_source": "integer engine" if s.engine_accuracy is not None else "fake-quant",
            "fp_accuracy": fp.fp_accuracy, "fp_long_accuracy": fp_long.fp_accuracy,
            "drop_vs_fp_long": 100 * (fp_long.fp_accuracy - acc),
            "drop_vs_fp": 100 * (fp.fp_accuracy - acc),
            "crossbars": {"dense": xb[0], "after": xb[1]} if xb else None,
            "mc_chips": s.get("montecarlo.chips"), "mc_test_images": s.get("montecarlo.test_images"),
            "mc": mc, "command": s.get("command"), "date": s.get("date"),
            "device": s.get("device.kind")})
    return out, ref


def markdown(table: list, ref: dict) -> str:
    n = ref["test_images"]
    lines = [
        f"Float model {100 * ref['fp_accuracy']:.2f}% ({ref['fp_epochs']} epochs), float "
        f"reference `fp_long` {100 * ref['fp_long_accuracy']:.2f}% ({ref['fp_long_epochs']} "
        f"epochs: float + second-stage epochs). Accuracies on the whole {n:,}-image test set "
        f"(one binomial std: {noise_points(ref['fp_long_accuracy'], n):.2f} points); drops in "
        "points against `fp_long` and against the shared float model `fp`. Monte Carlo: mean "
        "+/- std (min) over the chips, "
        "compensation off / on.\n",
        "| run | method | target sparsity | accuracy | drop vs fp_long | drop vs fp | crossbars "
        "| MC sigma 0 | MC sigma 0.3 off | MC sigma 0.3 on | MC sigma 0.5 off | MC sigma 0.5 on |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(r, sigma, which):
        st = r["mc"].get(sigma, {}).get(which)
        return "-" if st is None else (f"{100 * st['mean']:.2f} +/- {100 * st['std']:.2f} "
                                       f"({100 * st['min']:.2f})")

    for r in table:
        xb = r["crossbars"]
        crossbars = f"{xb['dense']} -> {xb['after']}" if xb else "-"
        zero = r["mc"].get("0", {})
        z = zero.get("on") or zero.get("off")
        clean = "-" if z is None else f"{100 * z['mean']:.2f}"
        lines.append(
            f"| {r['run']} | {r['method']} | {100 * r['target_sparsity']:.0f}% | "
            f"{100 * r['accuracy']:.2f}% ({r['accuracy_source']}) | "
            f"{r['drop_vs_fp_long']:+.2f} | {r['drop_vs_fp']:+.2f} | {crossbars} | {clean} | "
            f"{cell(r, '0.3', 'off')} | {cell(r, '0.3', 'on')} | {cell(r, '0.5', 'off')} | "
            f"{cell(r, '0.5', 'on')} |")
    chips = {r["mc_chips"] for r in table} - {None}
    images = {r["mc_test_images"] for r in table} - {None}
    lines.append(f"\nMonte Carlo: {', '.join(map(str, sorted(chips)))} chips per sigma on "
                 f"{', '.join(map(str, sorted(images)))} class-balanced test images "
                 f"(one binomial std at 65%: {noise_points(0.65, max(images or {1})):.2f} "
                 "points per chip). Commands: each run's summary.json.\n")
    return "\n".join(lines) + "\n"


def copy_runs(root: Path, out: Path, names) -> None:
    for name in names:
        src = find(root, name)
        dst = out / name
        dst.mkdir(parents=True, exist_ok=True)
        for pattern in COPY:
            for f in src.glob(pattern):
                shutil.copy2(f, dst / f.name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--out", default="results/resnet20_proxy")
    ap.add_argument("--runs", default=",".join(RUNS),
                    help="comma-separated run folders, one row each (default: %(default)s)")
    a = ap.parse_args(argv)
    root, out = Path(a.root), Path(a.out)
    names = tuple(n for n in a.runs.split(",") if n)
    try:
        table, ref = rows(root, names)
    except SummaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps({"reference": ref, "runs": table}, indent=1))
    text = markdown(table, ref)
    (out / "table.md").write_text(text)
    copy_runs(root, out, ("fp", "fp_long") + names)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
