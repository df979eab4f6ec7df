"""PNG of accuracy vs sigma for the four ablations (readable without the code)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ABLATIONS = {
    "neither": "no adaptation, no compensation",
    "adaptation": "variation-aware training only",
    "compensation": "self-compensation only",
    "both": "training + self-compensation (CRIMP)",
}


def plot_accuracy_vs_sigma(results: dict, path: str, *, title: str | None = None,
                           baseline: float | None = None, n_chips: int | None = None) -> str:
    """Writes `path` (PNG): mean accuracy +/- std (error bars) and the worst chip per ablation.

    Args:
      results: {ablation: {sigma_key: accuracy_summary}}; ablation names in ABLATIONS get
        descriptive legend labels, others are shown as given.
      baseline: optional float-model accuracy drawn as a dashed line.
    """
    if not results:
        raise ValueError("results is empty: nothing to plot")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, (name, per_sigma) in enumerate(results.items()):
        sig = sorted(per_sigma, key=float)
        xs = [float(s) for s in sig]
        mean = [100 * per_sigma[s]["mean"] for s in sig]
        std = [100 * per_sigma[s]["std"] for s in sig]
        worst = [100 * per_sigma[s]["min"] for s in sig]
        color = f"C{i}"
        ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, color=color,
                    label=f"{ABLATIONS.get(name, name)} (mean +/- std)")
        ax.plot(xs, worst, linestyle=":", marker="v", color=color, alpha=0.6)
    if baseline is not None:
        ax.axhline(100 * baseline, color="k", linestyle="--", linewidth=1,
                   label="float baseline, no variation")
    ax.plot([], [], "k:v", alpha=0.6, label="worst chip (dotted)")
    chips = f", {n_chips} chips per point" if n_chips else ""
    ax.set_title(title or f"Accuracy under RRAM write variation{chips}")
    ax.set_xlabel("write variation sigma (log-normal, per cell)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
