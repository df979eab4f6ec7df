"""PNG figures of a report, one function per figure: `figure(runs, out_dir) -> [(file, caption)]`.

Each returns the files it wrote (an empty list when no run has the data). Every figure has a
title, axis labels with units and a legend. The cost figures reuse `crimp_jax.cost.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

from crimp_jax.utils.paths import short_layer_name

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from crimp_jax.cost.plots import cost_breakdown_figure, crossbars_per_layer_figure  # noqa: E402
from crimp_jax.evaluate.plot import MARKERS, plot_accuracy_vs_sigma  # noqa: E402
from crimp_jax.report.runs import Run  # noqa: E402


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name


_short = short_layer_name


def accuracy_vs_sigma(runs: Sequence[Run], out: Path) -> list:
    """Mean test accuracy (+/- std over chips) vs write-variation sigma, every curve of every run
    (`crimp_jax.evaluate.plot_accuracy_vs_sigma`, the figure each run writes too)."""
    have = [r for r in runs if r.summary.curves()]
    if not have:
        return []
    heads = {r.summary.headline_sigma for r in have} - {None}
    path = out / "accuracy_vs_sigma.png"
    plot_accuracy_vs_sigma(
        [(r.name if len(have) > 1 else None, r.summary.curves(), r.summary.fp_accuracy,
          r.get("montecarlo.chips")) for r in have], path,
        headline_sigma=heads.pop() if len(heads) == 1 else None)
    return [(path.name, "Accuracy vs write-variation sigma for every Monte Carlo curve found "
             "(mean over chips, error bars +/- 1 std).")]


def sparsity_per_layer(runs: Sequence[Run], out: Path) -> list:
    """Grouped bars: weight sparsity of each pruned layer, one bar per run."""
    have = [r for r in runs if r.get("prune.layers")]
    if not have:
        return []
    layers = []
    for r in have:
        layers += [row["layer"] for row in r.get("prune.layers") if row["layer"] not in layers]
    width = 0.8 / len(have)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * len(layers) * len(have) + 3), 4.8),
                           constrained_layout=True)
    for i, r in enumerate(have):
        by_layer = {row["layer"]: 100 * row["sparsity"] for row in r.get("prune.layers")}
        xs = [j + (i - (len(have) - 1) / 2) * width for j, name in enumerate(layers)
              if name in by_layer]
        ys = [by_layer[name] for name in layers if name in by_layer]
        target, got = r.get("prune.target_sparsity"), r.get("prune.sparsity")
        label = (f"{r.name}: overall {100 * got:.1f}%" if got is not None else r.name) + (
            f" (target {100 * target:.1f}%)" if target is not None else "")
        bars = ax.bar(xs, ys, width, color=f"C{i}", label=label)
        if len(xs) * len(have) <= 40:
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
        if got is not None:
            ax.axhline(100 * got, color=f"C{i}", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(layers)), [_short(p) for p in layers], rotation=45, ha="right",
                  fontsize=8)
    ax.set_xlabel("layer (network order)")
    ax.set_ylabel("weight sparsity (% of the layer's weights pruned)")
    ax.set_ylim(0, 105)
    ax.set_title("Per-layer weight sparsity after CRIMP pruning (dashed: overall sparsity)",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return [(_save(fig, out / "sparsity_per_layer.png"),
             "Per-layer weight sparsity (bars) and overall sparsity (dashed) of each pruned run.")]


def _occupancy(run: Run):
    """(before, after, physical) in the `model_cost` layout crossbars_per_layer_figure reads."""
    rows = run.get("prune.layers")
    if rows:
        pairs = {r["layer"]: ((r["arrays_dense"], r["tiles_dense"]),
                              (r["arrays_after"], r["tiles_after"])) for r in rows}
        physical = True
    elif run.get("cost.per_layer_crossbars"):
        tiles = run.get("cost.per_layer_tiles") or {}
        pairs = {p: ((c[0], (tiles.get(p) or [0, 0])[0]), (c[1], (tiles.get(p) or [0, 0])[1]))
                 for p, c in run.get("cost.per_layer_crossbars").items()}
        physical = True
    elif run.get("cost.per_layer_tiles"):
        pairs = {p: ((0, t[0]), (0, t[1])) for p, t in run.get("cost.per_layer_tiles").items()}
        physical = False
    else:
        return None

    def cost(i):
        return {"layers": {p: {"counts": {"crossbar": v[i][0]}, "tiles": v[i][1]}
                           for p, v in pairs.items()}}

    return cost(0), cost(1), physical


def crossbar_occupancy(runs: Sequence[Run], out: Path) -> list:
    """Per run: crossbars per layer, dense vs after CRIMP re-packing."""
    files = []
    for r in runs:
        occ = _occupancy(r)
        if occ is None:
            continue
        before, after, physical = occ
        sparsity = r.get("prune.sparsity")
        at = f" at {100 * sparsity:.1f}% weight sparsity" if sparsity is not None else ""
        fig = crossbars_per_layer_figure(
            before, after, physical=physical,
            title=f"{r.name} ({r.get('model', '?')}): crossbars per layer,\n"
                  f"dense vs after CRIMP pruning and re-packing{at}")
        ax = fig.axes[0]
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [labels[0].replace("before", "dense (unpruned)"),
                            labels[1].replace("after", "after pruning + re-packing")],
                  fontsize=8, loc="upper left")
        ax.set_ylim(0, 1.3 * max(ax.get_ylim()[1], 1))  # room for the legend above the bars
        ax.title.set_fontsize(10)
        files.append((_save(fig, out / f"crossbars_{r.slug}.png"),
                      f"{r.name}: {'physical' if physical else 'logical'} crossbars per layer, "
                      "dense vs after re-packing."))
    return files


def _breakdown(run: Run):
    """{scenario: {'power_mw': {component: mW}, 'area_um2': {component: um^2}}} or None."""
    c = run.get("cost")
    if not c:
        return None
    power, area = c.get("power_mw_by_component"), c.get("area_um2_by_component")
    if power and area:
        return {k: {"power_mw": power[k], "area_um2": area.get(k, {})} for k in power}, True
    if c.get("power_mw") is None:
        return None
    tot = "total (summary.json has no per-component split)"
    out = {k: {"power_mw": {tot: p}, "area_um2": {tot: 1e6 * (c.get("reference_area_mm2")
                                                               or {}).get(k, 0.0)}}
           for k, p in (c.get("reference_power_mw") or {}).items()}
    out["crimp"] = {"power_mw": {tot: c["power_mw"]},
                    "area_um2": {tot: 1e6 * (c.get("area_mm2") or 0.0)}}
    return out, False


def cost_breakdown(runs: Sequence[Run], out: Path) -> list:
    """Per run: stacked power and area per component for CRIMP and the three references."""
    files = []
    for r in runs:
        b = _breakdown(r)
        if b is None:
            continue
        scenarios, split = b
        pr = r.get("cost.power_reduction.original")
        ar = r.get("cost.area_reduction.original")
        vs = (f"\nCRIMP needs {pr:.1f}x less power and {ar:.1f}x less area than the original"
              if pr is not None and ar is not None else "")
        fig = cost_breakdown_figure(
            scenarios, title=f"{r.name} ({r.get('model', '?')}): computing power and area by "
                             f"component{vs}")
        files.append((_save(fig, out / f"cost_breakdown_{r.slug}.png"),
                      f"{r.name}: computing power (W) and area (mm^2) by component"
                      + ("" if split else " (totals only)") + ", CRIMP vs the references."))
    return files


def _epochs(run: Run):
    """{stage: [(x, record)]}: last record per (stage, epoch), x counted across stages."""
    last = {}
    for rec in run.metrics:
        if rec.get("epoch") is not None:
            last[(rec.get("stage", "train"), rec.get("epoch"))] = rec
    stages, x = {}, 0
    for (stage, _), rec in last.items():
        x += 1
        stages.setdefault(stage, []).append((x, rec))
    return stages


def training_curves(runs: Sequence[Run], out: Path) -> list:
    """Test accuracy (solid) and train accuracy (dotted) vs epoch, per run and stage."""
    have = [r for r in runs
            if any(rec.get("test_accuracy") is not None for rec in r.metrics)]
    if not have:
        return []
    fig, ax = plt.subplots(figsize=(8.5, 5), constrained_layout=True)
    for i, r in enumerate(have):
        for j, (stage, pts) in enumerate(_epochs(r).items()):
            test = [(x, 100 * rec["test_accuracy"]) for x, rec in pts
                    if rec.get("test_accuracy") is not None]
            train = [(x, 100 * rec["train_accuracy"]) for x, rec in pts
                     if rec.get("train_accuracy") is not None]
            who = f"{r.name}, " if len(have) > 1 else ""
            if test:
                ax.plot(*zip(*test), color=f"C{i}", marker=MARKERS[j % 6], markersize=4,
                        label=f"{who}{stage} stage: test (last {test[-1][1]:.2f}%)")
            if train:
                ax.plot(*zip(*train), color=f"C{i}", linestyle=":", linewidth=1)
            if j > 0 and pts:
                ax.axvline(pts[0][0] - 0.5, color=f"C{i}", linewidth=0.8, alpha=0.6)
                ax.annotate(f"{stage} stage starts", (pts[0][0] - 0.5, 0.02),
                            xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                            color=f"C{i}", xytext=(2, 0), textcoords="offset points")
    ax.plot([], [], "k:", linewidth=1, label="dotted: train accuracy (augmented batches)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch (counted across stages)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Training curves: test accuracy after each epoch, per stage", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return [(_save(fig, out / "training_curves.png"),
             "Test accuracy (solid) and train accuracy (dotted) after each epoch, per stage.")]


def periphery_sweeps(runs: Sequence[Run], out: Path) -> list:
    """Per run: accuracy vs ADC bits, vs DAC bits and vs read time
    (`crimp_jax.evaluate.plot`, the figures each run writes too)."""
    from crimp_jax.evaluate.plot import plot_accuracy_vs_bits, plot_accuracy_vs_time

    files = []
    for r in runs:
        mc = r.get("montecarlo") or {}
        fp = r.summary.fp_accuracy
        for kind, label in (("adc_sweep", "ADC bits"), ("dac_sweep", "DAC bits per input cycle")):
            if mc.get(kind):
                path = out / f"accuracy_vs_{kind.split('_')[0]}_bits_{r.slug}.png"
                plot_accuracy_vs_bits(mc[kind], path, label, fp)
                files.append((path.name, f"{r.name}: accuracy vs {label} (mean over chips, "
                              "+/- 1 std; dotted: ideal ADCs)."))
        if mc.get("drift_sweep"):
            path = out / f"accuracy_vs_time_{r.slug}.png"
            plot_accuracy_vs_time(mc["drift_sweep"], path, fp)
            files.append((path.name, f"{r.name}: accuracy vs read time after programming, "
                          "self-compensation off and on."))
    return files
