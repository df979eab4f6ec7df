"""Figures of the cost model, as pure functions of `model_cost` / `reductions` results.

Each function returns a matplotlib Figure (Agg backend, nothing shown); the caller saves it.
Every figure carries a title, axis labels with units and a legend, so it reads without the code.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib

from crimp_jax.utils.paths import short_layer_name

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Readable names for the components of components.json, in stacking order.
COMPONENT_LABELS = {
    "adc": "ADCs",
    "dac": "DACs",
    "sample_hold": "sample & hold",
    "crossbar": "RRAM arrays",
    "shift_add": "shift & add",
    "alignment_unit": "data-alignment units",
    "fp32_mult": "FP32 scale multipliers",
    "int32_mult": "INT32 scale multipliers",
    "int8_mult": "INT8 scale multipliers",
}
SCENARIO_LABELS = {
    "original": "original\n(dense,\nFP32 scales)",
    "quant_float": "quantized\n(dense,\nfloat scales)",
    "unstructured": "unstructured\npruning\n(+ alignment)",
    "crimp": "CRIMP\n(aligned pruning,\npower-of-two\nscales)",
}


def _scenarios(result: Mapping) -> dict:
    """{name: cost} from a `reductions` result or an already flat {name: cost} mapping."""
    if "crimp" in result and "references" in result:
        return {**result["references"], "crimp": result["crimp"]}
    return dict(result)


def cost_breakdown_figure(result: Mapping, title: str = "Computing power and area by component"):
    """Stacked bars per component (power in W, area in mm^2) for each scenario.

    result: `reductions(...)` output, or {scenario name: `model_cost(...)` output}.
    """
    costs = _scenarios(result)
    names = list(costs)
    comps = [c for c in COMPONENT_LABELS
             if any(costs[n]["power_mw"].get(c, 0) or costs[n]["area_um2"].get(c, 0)
                    for n in names)]
    comps += sorted({c for n in names for c in costs[n]["power_mw"]} - set(COMPONENT_LABELS))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    for ax, key, scale, unit in ((axes[0], "power_mw", 1e-3, "power (W)"),
                                 (axes[1], "area_um2", 1e-6, "area (mm$^2$)")):
        bottom = [0.0] * len(names)
        for i, comp in enumerate(comps):
            vals = [costs[n][key].get(comp, 0.0) * scale for n in names]
            ax.bar(range(len(names)), vals, bottom=bottom, color=cmap(i % 10),
                   label=COMPONENT_LABELS.get(comp, comp))
            bottom = [b + v for b, v in zip(bottom, vals)]
        for x, total in enumerate(bottom):
            ax.annotate(f"{total:.3g}", (x, total), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([SCENARIO_LABELS.get(n, n) for n in names], fontsize=8)
        ax.set_ylabel(f"computing {unit}")
        ax.set_title(f"computing {unit.split(' ')[0]} (totals above bars)")
        ax.set_ylim(0, 1.1 * max(bottom + [1e-9]))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], title="component (top to bottom)", fontsize=8,
               loc="outside right upper")
    fig.suptitle(title)
    return fig


def crossbars_per_layer_figure(before: Mapping, after: Mapping,
                               title: str = "Crossbars per layer before and after pruning",
                               physical: bool = True):
    """Grouped bars per layer: crossbars of `before` vs `after` (two `model_cost` outputs).

    physical: count physical arrays (x slices x polarities) rather than logical tiles.
    """
    layers = list(before["layers"])
    key = "crossbar"

    def n(cost, path):
        layer = cost["layers"].get(path)
        if layer is None:
            return 0
        return layer["counts"][key] if physical else layer["tiles"]

    b = [n(before, p) for p in layers]
    a = [n(after, p) for p in layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(layers) + 2), 4.5), constrained_layout=True)
    x = range(len(layers))
    ax.bar([i - 0.2 for i in x], b, width=0.4, label=f"before ({sum(b)} total)", color="0.6")
    ax.bar([i + 0.2 for i in x], a, width=0.4, label=f"after ({sum(a)} total)", color="tab:blue")
    ax.set_xticks(list(x))
    ax.set_xticklabels([short_layer_name(p) for p in layers],
                       rotation=45, ha="right", fontsize=8)
    what = "physical crossbars (slices x polarities)" if physical else "logical crossbar tiles"
    ax.set_ylabel(f"{what} per layer")
    ax.set_xlabel("layer")
    ax.set_title(title)
    ax.legend()
    return fig
