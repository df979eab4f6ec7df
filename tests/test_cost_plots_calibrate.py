"""Cost figures render with titles, labels and legends; calibration pieces behave."""

import numpy as np

from crimp_jax.cost import load_components, reductions
from crimp_jax.cost.calibrate import group_mask, markdown, synthetic_masks
from crimp_jax.cost.components import unconfirmed
from crimp_jax.cost.plots import cost_breakdown_figure, crossbars_per_layer_figure
from crimp_jax.xbar import XbarSpec

SPEC = XbarSpec(rows=32, cols=16)
SHAPES = {"conv0/conv/kernel": (3, 3, 8, 16), "conv1/conv/kernel": (3, 3, 16, 32),
          "fc/kernel": (32, 10)}


def test_figures_are_labelled(tmp_path):
    masks = synthetic_masks(SHAPES, SPEC, 0.75)
    res = reductions(SHAPES, SPEC, 8, masks)
    fig = cost_breakdown_figure(res)
    assert fig._suptitle.get_text()
    for ax in fig.axes:
        assert ax.get_ylabel() and ax.get_title()
    assert fig.legends and fig.legends[0].get_texts()
    fig.savefig(tmp_path / "breakdown.png")
    fig = crossbars_per_layer_figure(res["references"]["original"], res["crimp"])
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_ylabel() and ax.get_xlabel() and ax.get_legend()
    fig.savefig(tmp_path / "layers.png")
    assert (tmp_path / "layers.png").stat().st_size > 0


def test_group_mask_structure_and_sparsity():
    m = group_mask((3, 3, 8, 40), SPEC, keep=0.25)
    # per column tile (16 columns) and input channel, the 9 rows are all kept or all pruned
    per_group = m.reshape(9, 8, 40).sum(axis=0)
    assert set(np.unique(per_group)) <= {0.0, 9.0}
    assert (m[..., :16].any(axis=(0, 1)).sum(axis=0) == 2).all()  # round(0.25 * 8) channels
    masks = synthetic_masks(SHAPES, SPEC, 0.75)
    total = sum(np.prod(s) for s in SHAPES.values())
    kept = sum(m.sum() for m in masks.values())
    assert abs((1 - kept / total) - 0.75) < 0.1


def test_unconfirmed_figures_are_listed():
    names = unconfirmed()
    assert "crossbar" in names and "adc" not in names
    assert set(load_components()) >= {"crossbar", "adc", "dac", "sample_hold", "shift_add",
                                       "alignment_unit", "fp32_mult", "int32_mult"}


def test_markdown_renders_from_a_calibration_dict():
    cal = {"xbar": dict(rows=128, cols=128, bits_per_cell=2, weight_bits=8, differential=True),
           "target_sparsity": 0.8825, "achieved_sparsity": 0.883, "dense_tiles": 906,
           "crimp_tiles": 134, "dense_crossbars": 7248, "crimp_crossbars": 1072,
           "crossbar_keep_fraction": 0.148, "original_power_mw": 1.0, "original_area_um2": 1.0,
           "crimp_power_mw": 1.0, "crimp_area_um2": 1.0,
           "power_reduction": {"original": 13.0, "quant_float": 12.0, "unstructured": 1.5},
           "area_reduction": {"original": 30.5, "quant_float": 17.5, "unstructured": 3.2},
           "crossbar_only_reduction": {"power": 6.8, "area": 6.8},
           "multiplier_share_of_crossbar_side": {"power": 0.9, "area": 3.5},
           "paper_implied_multiplier_share": {"power": 1.9, "area": 1.8},
           "op_rate_ghz_matching_paper_power": 2.5,
           "columns_per_multiplier_matching_paper_area": 2.0,
           "op_rate_ghz_matching_both": 5.0,
           "paper": {"conference": {"power_reduction": 19.8, "area_reduction": 18.8}}}
    text = markdown(cal)
    assert "19.8x" in text and "13.00x" in text
