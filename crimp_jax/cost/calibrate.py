"""Calibration of the cost accounting against the conference paper's VGG-16 figures.

Huai et al., ASP-DAC 2023 report VGG-16 / CIFAR-10 at 88.25% sparsity with 19.8x less computing
power and 18.8x less computing area than the original model. Their masks are not public, so we
price a synthetic CRIMP-style mask at that sparsity: in every layer and every column tile the
same fraction of kernel groups (k*k rows of one input channel) is kept, at least one, so
surviving rows re-pack into as few crossbars as the sparsity allows.

    python -m crimp_jax.cost.calibrate                 # prints the calibration as JSON
    python -m crimp_jax.cost.calibrate --write-md      # also rewrites CALIBRATION.md
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from crimp_jax.cost.model import cost_setup, model_cost, reductions
from crimp_jax.xbar.config import XbarSpec, xbar_spec
from crimp_jax.xbar.view import tile_geometry

PAPER = {"conference": {"sparsity": 0.8825, "power_reduction": 19.8, "area_reduction": 18.8,
                        "source": "Huai et al., ASP-DAC 2023 (abstract), VGG-16 CIFAR-10"},
         "journal": {"power_reduction": 100.02, "area_reduction": 17.37,
                     "source": "Huai et al., CRIMP, ACM 2023 (abstract), average over models"}}
MD_PATH = os.path.join(os.path.dirname(__file__), "CALIBRATION.md")


def vgg16_shapes() -> dict:
    """{kernel path: shape} of the CIFAR VGG-16 (abstract init, no parameter values)."""
    from crimp_jax.models import build_network
    from crimp_jax.utils.paths import flatten
    params = build_network("vgg16").abstract_variables()
    from crimp_jax.cost.model import layer_shapes
    return layer_shapes(flatten(params["params"]))


def group_mask(shape, spec, keep: float, seed: int = 0) -> np.ndarray:
    """Kernel-group mask keeping max(1, round(keep * groups)) groups of every column tile.

    A group is the k*k rows of one input channel within one column tile (docs/method.md section 3),
    chosen at random per column tile; Dense layers have k*k = 1.
    """
    rng = np.random.default_rng(seed)
    g = tile_geometry(shape, xbar_spec(spec))
    cin = g.n_rows // g.k2
    n_keep = max(1, int(round(keep * cin)))
    mask = np.zeros((cin, g.n_cols), np.float32)  # (cin, col)
    for ct in range(g.n_col_tiles):
        cols = slice(ct * g.cols_per_tile, min((ct + 1) * g.cols_per_tile, g.n_cols))
        mask[rng.choice(cin, n_keep, replace=False), cols] = 1.0
    if len(shape) == 2:
        return mask
    kh, kw = shape[0], shape[1]
    return np.broadcast_to(mask[None, None], (kh, kw, cin, g.n_cols)).copy()


def synthetic_masks(shapes, spec, sparsity: float, seed: int = 0) -> dict:
    """Uniform kernel-group masks whose overall sparsity is as close to `sparsity` as rounding
    allows (the keep fraction is searched so the achieved sparsity matches)."""
    total = sum(math.prod(s) for s in shapes.values())

    def build(keep):
        return {p: group_mask(s, spec, keep, seed + i) for i, (p, s) in enumerate(shapes.items())}

    lo, hi = 0.0, 1.0 - sparsity
    for _ in range(30):  # bisection on the keep fraction: max(1, round(...)) shifts it a little
        mid = 0.5 * (lo + hi)
        kept = sum(int(m.sum()) for m in build(mid).values())
        lo, hi = (mid, hi) if kept / total < 1 - sparsity else (lo, mid)
    return build(hi)


def calibrate(spec=None, cfg=None, sparsity: float = PAPER["conference"]["sparsity"],
              weight_bits: int = 8) -> dict:
    """Prices VGG-16 dense vs CRIMP at `sparsity` (every layer `weight_bits`-bit, the paper's
    W8A8) and explains the gap to the paper."""
    spec = xbar_spec(spec or XbarSpec())
    shapes = vgg16_shapes()
    masks = synthetic_masks(shapes, spec, sparsity)
    total = sum(math.prod(s) for s in shapes.values())
    achieved = 1 - sum(float(m.sum()) for m in masks.values()) / total
    res = reductions(shapes, spec, weight_bits, masks, cfg=cfg)
    crimp, orig = res["crimp"], res["references"]["original"]
    options, components = cost_setup(cfg)
    dense_po2 = model_cost(shapes, spec, weight_bits, None, pruning="none", scale="po2",
                           options=options,
                           components=components)
    keep_xbar = crimp["crossbars"] / orig["crossbars"]
    mult = "fp32_mult"
    # Share of the original's cost taken by its scale multipliers, and what the paper implies:
    # ratio = (X + M) / (keep * X)  =>  M / X = ratio * keep - 1 (X: crossbar-side cost).
    xp, xa = dense_po2["total_power_mw"], dense_po2["total_area_um2"]
    mp, ma = orig["power_mw"].get(mult, 0.0), orig["area_um2"].get(mult, 0.0)
    paper = PAPER["conference"]
    implied_mp = paper["power_reduction"] * crimp["total_power_mw"] / xp - 1
    implied_ma = paper["area_reduction"] * crimp["total_area_um2"] / xa - 1
    return {
        "model": "vgg16", "xbar": dict(rows=spec.rows, cols=spec.cols,
                                       bits_per_cell=spec.bits_per_cell,
                                       weight_bits=weight_bits,
                                       differential=spec.differential),
        "target_sparsity": sparsity, "achieved_sparsity": achieved,
        "dense_tiles": crimp["dense_tiles"], "crimp_tiles": crimp["tiles"],
        "dense_crossbars": orig["crossbars"], "crimp_crossbars": crimp["crossbars"],
        "crossbar_keep_fraction": keep_xbar,
        "original_power_mw": orig["total_power_mw"], "original_area_um2": orig["total_area_um2"],
        "crimp_power_mw": crimp["total_power_mw"], "crimp_area_um2": crimp["total_area_um2"],
        "power_reduction": res["power_reduction"], "area_reduction": res["area_reduction"],
        "crossbar_only_reduction": {
            "power": xp / crimp["total_power_mw"], "area": xa / crimp["total_area_um2"]},
        "multiplier_share_of_crossbar_side": {"power": mp / xp, "area": ma / xa},
        "paper_implied_multiplier_share": {"power": implied_mp, "area": implied_ma},
        "op_rate_ghz_matching_paper_power": (implied_mp * xp / mp * _rate(cfg)) if mp else None,
        "columns_per_multiplier_matching_paper_area": (ma / (implied_ma * xa)) if ma else None,
        # Sharing one multiplier between s columns divides both shares by s; running it at
        # rate r multiplies the power share by r / rate. Both matched: s from area, r from power.
        "op_rate_ghz_matching_both": ((implied_mp * xp / mp * _rate(cfg)) * (ma / (implied_ma * xa))
                                      if mp and ma else None),
        "paper": PAPER,
    }


def _rate(cfg) -> float:
    from crimp_jax.cost.components import apply_overrides, load_table
    overrides = None
    if cfg is not None:
        items = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
        overrides = items.get("components")
    return apply_overrides(load_table(), overrides)["clock"]["op_rate_ghz"]


def markdown(cal: dict) -> str:
    """CALIBRATION.md text for a `calibrate()` result."""
    p = cal["paper"]["conference"]
    pr, ar = cal["power_reduction"], cal["area_reduction"]
    f = lambda x: f"{x:.2f}"  # noqa: E731
    return f"""# Cost model calibration (generated)

Generated by `python -m crimp_jax.cost.calibrate --write-md`; do not edit by hand.

## Setup

VGG-16 (CIFAR-10), {cal['xbar']['rows']}x{cal['xbar']['cols']} crossbars,
{cal['xbar']['weight_bits']}-bit weights on {cal['xbar']['bits_per_cell']}-bit cells,
differential={cal['xbar']['differential']}. Synthetic CRIMP mask: in every layer and column tile
the same fraction of kernel groups is kept (at least one), target sparsity
{100 * cal['target_sparsity']:.2f}%, achieved {100 * cal['achieved_sparsity']:.2f}%.
Component figures: `components.json` (ISAAC 32 nm, Horowitz 45 nm; digital units at
1 op/cycle at the 1.2 GS/s ADC rate).

## Result

| | ours | paper (ASP-DAC 2023) |
| --- | --- | --- |
| logical tiles dense -> CRIMP | {cal['dense_tiles']} -> {cal['crimp_tiles']} | n/a |
| physical crossbars dense -> CRIMP | {cal['dense_crossbars']} -> {cal['crimp_crossbars']} (keep {100 * cal['crossbar_keep_fraction']:.1f}%) | n/a |
| power reduction vs original | {f(pr['original'])}x | {p['power_reduction']}x |
| area reduction vs original | {f(ar['original'])}x | {p['area_reduction']}x |
| power / area reduction vs quantization with float scales (INT32 mult) | {f(pr['quant_float'])}x / {f(ar['quant_float'])}x | n/a |
| power / area reduction vs unstructured pruning + alignment units | {f(pr['unstructured'])}x / {f(ar['unstructured'])}x | n/a |
| crossbar-side only (no scale multipliers anywhere) | {f(cal['crossbar_only_reduction']['power'])}x / {f(cal['crossbar_only_reduction']['area'])}x | n/a |

Original model: {cal['original_power_mw'] / 1e3:.2f} W, {cal['original_area_um2'] / 1e6:.2f} mm^2;
CRIMP: {cal['crimp_power_mw'] / 1e3:.3f} W, {cal['crimp_area_um2'] / 1e6:.3f} mm^2.

## The gap and why

A reduction against the original model is (X + M) / (k X), with X the crossbar-side cost
(arrays, ADCs, DACs, S&H, S+A), k the fraction of crossbars CRIMP keeps and M the cost of the
FP32 multipliers that apply the original's float scales (one per output column). Crossbar
pruning alone gives 1/k ({f(cal['crossbar_only_reduction']['power'])}x here; an ideal 1/(1-sparsity)
would be {1 / (1 - cal['target_sparsity']):.2f}x). The rest must come from M:

- our M/X: power {f(cal['multiplier_share_of_crossbar_side']['power'])}, area
  {f(cal['multiplier_share_of_crossbar_side']['area'])};
- M/X the paper's figures imply with our k: power
  {f(cal['paper_implied_multiplier_share']['power'])}, area
  {f(cal['paper_implied_multiplier_share']['area'])}.

The paper's power and area reductions are nearly equal, so its multipliers take about the same
share of power as of area. With ISAAC and Horowitz figures they cannot: one FP32 multiplier
(7,700 um^2) is six times the area of all the peripherals of one 128x128 crossbar
(about 1,280 um^2), while its power depends on how often it runs. Matching the paper's power
would need the multipliers at {f(cal['op_rate_ghz_matching_paper_power'] or 0)} GHz (ours:
1.2 GHz); matching its area would need one multiplier per
{f(cal['columns_per_multiplier_matching_paper_area'] or 0)} output columns (ours: 1). Both at once
would need one multiplier per {f(cal['columns_per_multiplier_matching_paper_area'] or 0)} columns
running at {f(cal['op_rate_ghz_matching_both'] or 0)} GHz, beyond what a 45 nm FP32 multiplier
does, so no plausible organisation built from these figures reproduces both numbers: the paper
must count units differently (for instance multipliers shared per crossbar or per tile, another
multiplier width, other peripheral figures, or sparsity-dependent multiplier counts). Its full
text is not public, so we keep the organisation we can justify and report this gap: our power
reduction is {100 * (1 - pr['original'] / p['power_reduction']):.0f}% below the paper's and our area
reduction {100 * (ar['original'] / p['area_reduction'] - 1):.0f}% above it, because per-column FP32
multipliers dominate the original's area but not its power.

Part of the gap is on the crossbar side: CRIMP keeps
{100 * cal['crossbar_keep_fraction']:.1f}% of the
crossbars, not {100 * (1 - cal['target_sparsity']):.2f}%, because each column tile re-packs into a
whole number of crossbars (a layer of 5 row tiles keeping 12% of its rows still needs 1) and the
first conv and the classifier cannot drop below one crossbar per column tile. The paper's masks
are trained, not uniform, and may prune whole layers' tiles unevenly, which packs better.

The journal figures (100.02x power, 17.37x area, averaged over models) are far more unequal
than the conference ones, so the journal's accounting gives the scale arithmetic a much larger
share of power than of area; we have no figures to reproduce that split. Quote our reductions
next to the paper's as the
same kind of measurement under documented assumptions; compare trends (which reference costs
more, how reductions grow with sparsity), not the third digit.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write-md", action="store_true", help=f"rewrite {MD_PATH}")
    args = parser.parse_args(argv)
    cal = calibrate()
    print(json.dumps(cal, indent=2))
    if args.write_md:
        with open(MD_PATH, "w") as f:
            f.write(markdown(cal))


if __name__ == "__main__":
    main()
