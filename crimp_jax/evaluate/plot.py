"""The one accuracy-vs-sigma figure, for one run's workdir and for a report over many runs."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from crimp_jax.summary import CURVE_LABELS, CURVE_ORDER  # noqa: E402

LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")


def plot_accuracy_vs_sigma(runs: Sequence[tuple], path, *, headline_sigma=None,
                           title: str | None = None) -> str:
    """Writes `path` (PNG): mean test accuracy (error bars: +/- 1 std over chips) vs sigma for
    every Monte Carlo curve of every run, each run's float accuracy as a dashed line and, for a
    single run, the worst chip of each curve (dotted).

    Args:
      runs: (name, curves, fp_accuracy, n_chips) per run; curves {curve: {sigma: statistics}}
        (`Summary.curves()`), fp_accuracy a fraction or None, name None for a lone run.
      headline_sigma: drawn as a vertical line when given.
    """
    runs = [r for r in runs if r[1]]
    if not runs:
        raise ValueError("no Monte Carlo curves: nothing to plot")
    fig, ax = plt.subplots(figsize=(8.5, 5.2), constrained_layout=True)
    baselines, chips = {}, set()
    for i, (name, curves, fp, n_chips) in enumerate(runs):
        chips.add(n_chips)
        for curve, per_sigma in curves.items():
            sig = sorted(per_sigma)
            color = f"C{CURVE_ORDER.index(curve)}" if curve in CURVE_ORDER else f"C{4 + i}"
            label = CURVE_LABELS.get(curve, curve) + (f"  [{name}]" if name else "")
            ax.errorbar(sig, [100 * per_sigma[s]["mean"] for s in sig],
                        yerr=[100 * (per_sigma[s].get("std") or 0.0) for s in sig], color=color,
                        linestyle=LINESTYLES[i % 4], marker=MARKERS[i % 6], capsize=3,
                        label=label)
            if len(runs) == 1:
                ax.plot(sig, [100 * per_sigma[s]["min"] for s in sig], linestyle=":",
                        marker="v", color=color, alpha=0.6)
        if fp is not None:
            baselines.setdefault(round(100 * fp, 2), []).append(name)
    if len(runs) == 1:
        ax.plot([], [], "k:v", alpha=0.6, label="worst chip (dotted)")
    for j, (value, names) in enumerate(sorted(baselines.items())):
        who = f" ({', '.join(n for n in names if n)})" if any(names) else ""
        ax.axhline(value, color="k", linestyle=(0, (2, 2 + j)), linewidth=1,
                   label=f"float model, no variation: {value:.2f}%{who}")
    if headline_sigma is not None:
        ax.axvline(headline_sigma, color="0.5", linewidth=0.8)
        ax.annotate(f"headline sigma = {headline_sigma:g}", (headline_sigma, 0.02),
                    xycoords=("data", "axes fraction"), xytext=(4, 0),
                    textcoords="offset points", fontsize=8, color="0.35")
    n = ", ".join(str(c) for c in sorted(c for c in chips if c is not None)) or "?"
    ax.set_title(title or f"Test accuracy under RRAM write variation ({n} simulated chips per "
                 "point; error bars: +/- 1 std over chips)", fontsize=10)
    ax.set_xlabel("write variation sigma (std of the log-normal conductance factor per cell)")
    ax.set_ylabel("test accuracy (%), mean over chips")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def plot_accuracy_vs_bits(sweep: dict, path, xlabel: str, fp_accuracy=None) -> str:
    """Writes `path` (PNG): mean accuracy (+/- 1 std over chips) vs swept ADC or DAC bits (or
    any knob's values), one line per sigma, each sigma's ideal-ADC accuracy (where given) as a
    dotted line of the same colour.

    `sweep`: `montecarlo.adc_sweep` / `dac_sweep` / `knob_sweep` of summary.json."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    for i, (skey, per_bits) in enumerate(sweep["accuracy"].items()):
        bits = sorted(per_bits, key=float)
        ax.errorbar([float(b) for b in bits], [100 * per_bits[b]["mean"] for b in bits],
                    yerr=[100 * per_bits[b]["std"] for b in bits], marker=MARKERS[i % 6],
                    capsize=3, color=f"C{i}", label=f"sigma {skey}")
        ideal = sweep.get("ideal", {}).get(skey)
        if ideal:
            ax.axhline(100 * ideal["mean"], color=f"C{i}", ls=":",
                       label=f"sigma {skey}, ideal ADCs")
    if fp_accuracy is not None:
        ax.axhline(100 * fp_accuracy, color="k", ls="--", lw=1, label="float model")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    n = next(iter(next(iter(sweep["accuracy"].values())).values()))["n_chips"]
    ax.set_title(f"accuracy vs {xlabel} ({sweep['curve']}, {n} chips)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_accuracy_vs_time(sweep: dict, path, fp_accuracy=None) -> str:
    """Writes `path` (PNG): mean accuracy (+/- 1 std over chips) vs read time (log scale) per
    curve (self-compensation off / on). `sweep`: `montecarlo.drift_sweep` of summary.json."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    for curve, per_t in sweep["curves"].items():
        ts = sorted(per_t, key=float)
        color = f"C{CURVE_ORDER.index(curve)}" if curve in CURVE_ORDER else None
        ax.errorbar([float(t) for t in ts], [100 * per_t[t]["mean"] for t in ts],
                    yerr=[100 * per_t[t]["std"] for t in ts], marker="o", capsize=3,
                    color=color, label=CURVE_LABELS.get(curve, curve))
    if fp_accuracy is not None:
        ax.axhline(100 * fp_accuracy, color="k", ls="--", lw=1, label="float model")
    ax.set_xscale("log")
    ax.set_xlabel("read time after programming (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"drift: nu ~ N({sweep['nu_mean']:g}, {sweep['nu_std']:g}^2), "
                 f"t0 = {sweep['t0_s']:g} s, sigma {sweep['sigma']:g}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
