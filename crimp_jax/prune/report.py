"""Per-layer pruning reports: JSON-able rows, markdown text and a crossbar-occupancy PNG.

`layer_table(masks, spec, bits, scheme)` gives one dict per layer with plain Python numbers
(`bits`: {kernel path: weight bits} or one int, the layers' quantization bit widths):
  layer, shape, scheme, weights, weights_kept, sparsity,
  crossbar_groups, crossbar_groups_kept   tiles of the dense layer / tiles with a kept weight,
  kernel_groups, kernel_groups_kept       (cin, col_tile) groups / those with a kept weight,
  and every count of `crimp_jax.prune.repack.layer_hardware` (tiles and physical arrays
  before/after re-packing, alignment units).
`compare_schemes` puts CRIMP next to the two baselines pruned to CRIMP's achieved sparsity.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.prune.baselines import filter_masks, magnitude_masks
from crimp_jax.prune.groups import kernel_groups_in_use
from crimp_jax.prune.masks import masks_sparsity
from crimp_jax.prune.repack import layer_hardware
from crimp_jax.utils.paths import short_layer_name
from crimp_jax.xbar.config import layer_bits, xbar_spec

SUM_KEYS = ("weights", "weights_kept", "crossbar_groups", "crossbar_groups_kept",
            "kernel_groups", "kernel_groups_kept", "tiles_dense", "tiles_nonzero", "tiles_after",
            "tiles_after_aligned", "arrays_dense", "arrays_after", "arrays_after_aligned",
            "alignment_index_entries", "alignment_input_muxes",
            "alignment_output_reorder_entries")

DEFAULT_COLUMNS = ("layer", "shape", "sparsity", "kernel_groups_kept", "kernel_groups",
                   "tiles_dense", "tiles_nonzero", "tiles_after", "arrays_dense", "arrays_after")


def _py(value):
    value = np.asarray(value)
    return value.item() if value.shape == () else value.tolist()


_groups_in_use = jax.jit(kernel_groups_in_use, static_argnums=1)


def layer_table(masks: Mapping, spec, bits, scheme: str = "crimp") -> list:
    """One JSON-able dict per masked layer (see module docstring)."""
    rows = []
    for path, mask in masks.items():
        mask = jnp.asarray(mask)
        hw = {k: _py(v) for k, v in layer_hardware(mask, spec, scheme,
                                                   layer_bits(bits, path)).items()}
        groups = _groups_in_use(mask, xbar_spec(spec))
        rows.append({
            "layer": path, "shape": list(mask.shape), "scheme": scheme,
            "sparsity": 1.0 - hw["weights_kept"] / hw["weights"],
            "crossbar_groups": hw["tiles_dense"], "crossbar_groups_kept": hw["tiles_nonzero"],
            "kernel_groups": int(groups.size), "kernel_groups_kept": int(jnp.sum(groups)),
            **hw})
    return rows


def totals(rows: Sequence[Mapping]) -> dict:
    """Sums of the count columns over layers, with the overall sparsity."""
    out = {k: int(sum(r[k] for r in rows)) for k in SUM_KEYS if rows and k in rows[0]}
    out["sparsity"] = 1.0 - out["weights_kept"] / out["weights"] if rows else 0.0
    out["layer"] = "total"
    return out


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] = DEFAULT_COLUMNS,
                   with_total: bool = True) -> str:
    """Rows as a markdown table (sparsity as a percentage), with a total line."""
    body = list(rows) + ([totals(rows)] if with_total and rows else [])

    def cell(row, col):
        value = row.get(col, "")
        if col == "sparsity":
            return f"{100.0 * value:.2f}%"
        if col == "shape" and isinstance(value, (list, tuple)):
            return "x".join(str(d) for d in value)
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in body]
    return "\n".join(lines) + "\n"


def compare_schemes(kernels: Mapping, crimp_masks: Mapping, spec, bits, *,
                    min_keep: float) -> dict:
    """{'crimp'|'unstructured'|'filter': layer_table rows}; baselines at CRIMP's sparsity.

    The baselines prune `kernels` (restricted to the paths of `crimp_masks`) to the sparsity
    CRIMP achieved, with the same `min_keep` (pass prune.min_keep). Give them the weights the
    baselines should start from (e.g. the dense model's): CRIMP-pruned weights already hold
    CRIMP's zeros, so magnitude pruning of them reproduces CRIMP's mask.
    """
    kernels = {p: kernels[p] for p in crimp_masks}
    target = float(masks_sparsity(crimp_masks))
    return {
        "crimp": layer_table(crimp_masks, spec, bits, "crimp"),
        "unstructured": layer_table(magnitude_masks(kernels, target, min_keep), spec, bits,
                                    "unstructured"),
        "filter": layer_table(filter_masks(kernels, target, min_keep), spec, bits, "filter"),
    }


def plot_occupancy(tables: Mapping, png_path: str, model_name: str) -> str:
    """Writes a PNG of crossbars per layer (dense vs each scheme) and CRIMP's sparsity.

    `tables` maps a scheme name to `layer_table` rows (e.g. `compare_schemes` output, or just
    {'crimp': rows}). Returns `png_path`.
    """
    from matplotlib.figure import (
        Figure,  # no pyplot: no global state, no display backend
    )

    schemes = list(tables)
    first = tables[schemes[0]]
    layers = [short_layer_name(r["layer"]) for r in first]
    x = np.arange(len(layers))
    series = [("dense", [r["tiles_dense"] for r in first], "0.6")]
    labels = {"crimp": "CRIMP (crossbar + kernel-group, re-packed)",
              "unstructured": "unstructured (only all-zero tiles freed)",
              "filter": "filter (only all-zero tiles freed)"}
    series += [(labels.get(s, s), [r["tiles_after"] for r in tables[s]], None) for s in schemes]
    width = 0.8 / len(series)

    fig = Figure(figsize=(max(8.0, 0.45 * len(layers) + 3), 7.5), constrained_layout=True)
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for i, (label, values, color) in enumerate(series):
        total = int(sum(values))
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, color=color,
               label=f"{label}: {total} tiles")
    ax.set_ylabel("logical crossbars (tiles) per layer")
    sparsity = 100.0 * (1.0 - sum(r["weights_kept"] for r in first)
                        / sum(r["weights"] for r in first))
    ax.set_title(f"{model_name}: crossbars per layer at {sparsity:.1f}% weight sparsity "
                 f"(1 tile = {first[0]['arrays_dense'] // max(first[0]['tiles_dense'], 1)} "
                 "physical arrays)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    for s in schemes:
        ax2.plot(x, [100.0 * r["sparsity"] for r in tables[s]], marker="o",
                 label=labels.get(s, s))
    ax2.set_ylabel("weight sparsity (%)")
    ax2.set_ylim(0, 100)
    ax2.set_xlabel("layer (parameter path)")
    ax2.set_xticks(x, layers, rotation=60, ha="right", fontsize=7)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.savefig(png_path, dpi=120)
    return png_path
