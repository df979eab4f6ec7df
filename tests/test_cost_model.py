"""Cost model: hand-counted toy network, dense VGG-16 tile counts, monotonicity, overrides."""

import numpy as np
import pytest

from crimp_jax.cost import (
    CountOptions,
    cost_setup,
    cost_summary,
    default_cost_config,
    layer_counts,
    layer_shapes,
    load_components,
    model_cost,
    reductions,
)
from crimp_jax.models import build_network
from crimp_jax.xbar import XbarSpec

# Toy accelerator: 4x4 crossbars, 3-bit weights on 1-bit cells, differential
# -> ceil((3-1)/1) = 2 slices x 2 polarities = 4 physical arrays per logical tile.
TOY_SPEC = XbarSpec(rows=4, cols=4, bits_per_cell=1, differential=True)
TOY_BITS = 3
TOY_OPTIONS = CountOptions(adc_columns=2, adcs_per_shift_add=2, multiplier="fp32")
# Layer a: Dense 6 -> 5 (6 rows: 2 row tiles; 5 cols: 2 col tiles; 4 tiles).
# Layer b: conv 2x2, 2 -> 3 channels (k2 = 4, 8 rows: 2 row tiles; 3 cols: 1 col tile; 2 tiles).
TOY_SHAPES = {"a/kernel": (6, 5), "b/kernel": (2, 2, 2, 3)}
# Round figures so totals can be checked by hand (per unit; 'per' set to 1 everywhere).
TOY_FIGURES = {
    "crossbar": {"power_mw": 1.0, "area_um2": 10.0},
    "adc": {"power_mw": 2.0, "area_um2": 20.0},
    "dac": {"power_mw": 1.0, "area_um2": 1.0, "per": 1},
    "sample_hold": {"power_mw": 0.5, "area_um2": 2.0, "per": 1},
    "shift_add": {"power_mw": 3.0, "area_um2": 30.0},
    "fp32_mult": {"energy_pj": 2.0, "area_um2": 100.0},
    "clock": {"op_rate_ghz": 1.0},  # 2 pJ/op at 1 GHz = 2 mW
}


def toy_cost(masks=None, pruning="crimp", scale="float"):
    return model_cost(TOY_SHAPES, TOY_SPEC, TOY_BITS, masks, pruning=pruning, scale=scale,
                      options=TOY_OPTIONS, components=load_components(TOY_FIGURES))


def test_toy_dense_every_count_and_total():
    cost = toy_cost()
    a, b = cost["layers"]["a/kernel"], cost["layers"]["b/kernel"]
    # a: 4 tiles * 4 arrays = 16 crossbars; 2 ADCs each (2 columns per ADC); 4 DACs and 4 S&H
    # each; 32 ADCs / 2 = 16 S+A; 5 output columns -> 5 FP32 multipliers.
    assert a["tiles"] == 4
    assert a["counts"] == {"crossbar": 16, "adc": 32, "dac": 64, "sample_hold": 64,
                           "shift_add": 16, "alignment_unit": 0, "fp32_mult": 5}
    # b: 2 tiles * 4 = 8 crossbars, 16 ADCs, 32 DACs, 32 S&H, 8 S+A, 3 multipliers.
    assert b["tiles"] == 2
    assert b["counts"] == {"crossbar": 8, "adc": 16, "dac": 32, "sample_hold": 32,
                           "shift_add": 8, "alignment_unit": 0, "fp32_mult": 3}
    assert cost["counts"] == {"crossbar": 24, "adc": 48, "dac": 96, "sample_hold": 96,
                              "shift_add": 24, "alignment_unit": 0, "fp32_mult": 8}
    assert cost["tiles"] == 6 and cost["dense_tiles"] == 6 and cost["crossbars"] == 24
    # power: 24*1 + 48*2 + 96*1 + 96*0.5 + 24*3 + 8*2 = 352 mW
    assert cost["total_power_mw"] == pytest.approx(352.0)
    # area: 24*10 + 48*20 + 96*1 + 96*2 + 24*30 + 8*100 = 3008 um^2
    assert cost["total_area_um2"] == pytest.approx(3008.0)
    assert a["total_power_mw"] + b["total_power_mw"] == pytest.approx(352.0)
    # power-of-two scales: same hardware minus the 8 multipliers (16 mW, 800 um^2).
    po2 = toy_cost(scale="po2")
    assert "fp32_mult" not in po2["counts"]
    assert po2["total_power_mw"] == pytest.approx(336.0)
    assert po2["total_area_um2"] == pytest.approx(2208.0)


def toy_masks():
    a = np.ones((6, 5), np.float32)
    a[4:6, 0:4] = 0.0  # crossbar pruning: the whole tile (row tile 1, col tile 0) is zero
    b = np.ones((2, 2, 2, 3), np.float32)
    b[:, :, 1, :] = 0.0  # kernel-group pruning: input channel 1 (its 4 rows) in col tile 0
    return {"a/kernel": a, "b/kernel": b}


def test_toy_crimp_repacking():
    cost = toy_cost(toy_masks())
    # a: col tile 0 keeps rows 0-3 -> 1 tile; col tile 1 (column 4) keeps all 6 rows -> 2 tiles.
    # b: 4 of 8 rows survive -> 1 tile. 4 tiles -> 16 crossbars.
    assert cost["layers"]["a/kernel"]["tiles"] == 3
    assert cost["layers"]["b/kernel"]["tiles"] == 1
    assert cost["counts"] == {"crossbar": 16, "adc": 32, "dac": 64, "sample_hold": 64,
                              "shift_add": 16, "alignment_unit": 0, "fp32_mult": 8}


def test_toy_unstructured_and_filter():
    masks = toy_masks()
    irr = toy_cost(masks, pruning="unstructured", scale="po2")
    # a: columns 0-3 keep 4 weights -> 1 tile; column 4 keeps 6 -> 2 tiles; b: 4 per column -> 1.
    assert irr["tiles"] == 4
    # one alignment unit per physical crossbar of a pruned layer
    assert irr["counts"]["alignment_unit"] == irr["counts"]["crossbar"] == 16
    f = np.ones((6, 5), np.float32)
    f[:, 4] = 0.0  # filter pruning: output 4 removed -> 6 rows x 4 cols -> 2 x 1 tiles
    filt = toy_cost({"a/kernel": f}, pruning="filter", scale="float")
    assert filt["layers"]["a/kernel"]["tiles"] == 2
    assert filt["layers"]["a/kernel"]["counts"]["fp32_mult"] == 4
    assert filt["counts"]["alignment_unit"] == 0


def vgg16_params():
    return build_network("vgg16").abstract_variables()["params"]


def test_dense_vgg16_tiles_from_abstract_shapes():
    params = vgg16_params()  # ShapeDtypeStructs only: no parameter values
    one_cell = XbarSpec(bits_per_cell=8, differential=False)  # 1 cell per 8-bit weight
    cost = model_cost(params, one_cell, 8, pruning="none")
    expected = [1, 5, 5, 9, 18, 36, 36, 72] + [144] * 5 + [4]
    assert [l["tiles"] for l in cost["layers"].values()] == expected
    assert cost["tiles"] == 906 and cost["crossbars"] == 906
    # default: 8-bit weights on 2-bit cells, differential -> 4 slices x 2 polarities
    cost = model_cost(params, XbarSpec(), 8, pruning="none")
    assert cost["tiles"] == 906 and cost["crossbars"] == 906 * 8 == 7248
    # per-layer bits: 4-bit weights take 2 slices, so a W4 layer needs half the crossbars
    bits = {p: 4 if p == "conv5/conv/kernel" else 8 for p in cost["layers"]}
    mixed = model_cost(params, XbarSpec(), bits, pruning="none")
    assert mixed["layers"]["conv5/conv/kernel"]["counts"]["crossbar"] == 36 * 2 * 2
    assert mixed["crossbars"] == 7248 - 36 * 4


def test_more_pruning_never_raises_any_count_power_or_area():
    spec = XbarSpec(rows=18, cols=8, bits_per_cell=2, channel_aligned=True)
    shapes = {"c/kernel": (3, 3, 8, 20), "d/kernel": (40, 12)}
    comps = load_components()
    rng = np.random.default_rng(0)
    for trial in range(4):
        scores = {p: rng.random(s) for p, s in shapes.items()}
        if trial % 2:  # group-structured scores: one score per (channel, column) group
            s = rng.random((8, 20))
            scores["c/kernel"] = np.broadcast_to(s, (3, 3, 8, 20))
        prev = None
        for keep in (1.0, 0.8, 0.5, 0.3, 0.1, 0.0):
            masks = {p: (v >= np.quantile(v, 1 - keep) if keep > 0 else np.zeros_like(v))
                     .astype(np.float32) for p, v in scores.items()}
            costs = {(k, sc): model_cost(shapes, spec, 8, masks, pruning=k, scale=sc,
                                         components=comps)
                     for k in ("crimp", "unstructured", "filter") for sc in ("po2", "float")}
            if prev is not None:
                for key, c in costs.items():
                    p = prev[key]
                    for comp, n in c["counts"].items():
                        assert n <= p["counts"][comp], (key, keep, comp)
                    assert c["total_power_mw"] <= p["total_power_mw"] + 1e-9, (key, keep)
                    assert c["total_area_um2"] <= p["total_area_um2"] + 1e-9, (key, keep)
                    for path, layer in c["layers"].items():
                        assert layer["tiles"] <= p["layers"][path]["tiles"]
            prev = costs
        assert all(c["crossbars"] == 0 for c in prev.values())  # everything pruned


def test_override_changes_totals_and_unknown_keys_error():
    base = model_cost(TOY_SHAPES, TOY_SPEC, TOY_BITS, pruning="none", scale="float",
                      components=load_components())
    cheaper_adc = model_cost(TOY_SHAPES, TOY_SPEC, TOY_BITS, pruning="none", scale="float",
                             components=load_components({"adc.power_mw": 1.0}))
    n_adc = base["counts"]["adc"]
    assert cheaper_adc["total_power_mw"] == pytest.approx(base["total_power_mw"] - n_adc * 1.0)
    assert cheaper_adc["total_area_um2"] == base["total_area_um2"]
    options, comps = cost_setup({"components": {"fp32_mult": {"area_um2": 0.0}}})
    assert comps["fp32_mult"].area_um2 == 0.0
    with pytest.raises(ValueError, match=r"unknown cost component 'adcs'.*accepted components"):
        load_components({"adcs.power_mw": 1.0})
    with pytest.raises(ValueError, match=r"unknown field 'power' for cost component 'adc'"):
        load_components({"adc": {"power": 1.0}})
    with pytest.raises(ValueError, match=r"unknown cost key\(s\) \['adc_cols'\]"):
        cost_setup({"adc_cols": 64})
    with pytest.raises(ValueError, match=r"pruning='column': expected one of"):
        layer_counts((4, 4), TOY_SPEC, TOY_BITS, pruning="column")
    with pytest.raises(ValueError, match=r"cost.components.adc.power_mw=nan: expected a finite"):
        load_components({"adc.power_mw": float("nan")})
    with pytest.raises(ValueError, match=r"cost.components.adc.per=0: expected a finite number > 0"):
        load_components({"adc.per": 0})


def test_adc_sharing_option():
    one = layer_counts((3, 3, 16, 128), XbarSpec(), 8, options=CountOptions(adc_columns=128))
    eight = layer_counts((3, 3, 16, 128), XbarSpec(), 8, options=CountOptions(adc_columns=16))
    assert eight["counts"]["adc"] == 8 * one["counts"]["adc"]


def test_reductions_and_summary_on_tiny_cnn():
    params = build_network("tiny_cnn").abstract_variables()["params"]
    spec = XbarSpec(rows=32, cols=16)
    masks = {}
    for path, shape in layer_shapes(params).items():
        m = np.ones(shape, np.float32)
        if len(shape) == 4:
            m[:, :, : shape[2] // 2, :] = 0.0  # half the input channels pruned everywhere
        masks[path] = m
    res = reductions(params, spec, 8, masks, cfg=default_cost_config())
    assert set(res["power_reduction"]) == {"original", "quant_float", "unstructured"}
    assert res["crimp"]["tiles"] < res["crimp"]["dense_tiles"]
    for ratios in (res["power_reduction"], res["area_reduction"]):
        assert ratios["original"] > ratios["quant_float"] > 1.0  # FP32 mult costs more than INT32
        assert ratios["unstructured"] > 1.0
    summary = cost_summary(res)
    assert summary["power_reduction"] == res["power_reduction"]
    assert summary["crossbars"] == res["crimp"]["crossbars"]
    import json
    json.dumps(summary)  # JSON-ready
