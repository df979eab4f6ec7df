"""Cost model: hand-counted toy network, dense VGG-16 tile counts, monotonicity, overrides,
ADC / DAC resolution scaling."""

import json

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
    load_table,
    model_cost,
    reductions,
)
from crimp_jax.cost.components import adc_factor, dac_factor, scale_periphery
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
    json.dumps(summary)  # JSON-ready


# --- ADC / DAC resolution ------------------------------------------------------------------
# Library reference, per unit: 8-bit SAR ADC 2.0 mW / 1200 um^2; 1-bit DAC 4 mW / 170 um^2
# over 1024 DACs.
REF_ADC = (2.0, 1200.0)
REF_DAC = (4.0 / 1024, 170.0 / 1024)


def test_component_table_states_converter_bits_and_scaling_rules():
    table = load_table()
    assert table["adc"]["bits"] == 8 and table["dac"]["bits"] == 1
    for name in ("adc", "dac"):
        rule = table[name]["scaling"]
        assert set(rule) >= {"rule", "source", "confirmed", "check"}
        assert rule["confirmed"] is False
    assert "Walden" in table["adc"]["scaling"]["source"]
    comps = load_components()
    assert comps["adc"].bits == 8 and comps["dac"].bits == 1 and comps["crossbar"].bits is None


def test_adc_and_dac_scaling_golden_values():
    comps = load_components()
    assert (comps["adc"].power_mw, comps["adc"].area_um2) == REF_ADC
    assert (comps["dac"].power_mw, comps["dac"].area_um2) == pytest.approx(REF_DAC)
    assert adc_factor(6, 8) == 0.25 and adc_factor(10, 8) == 4.0 and adc_factor(8, 8) == 1.0
    assert dac_factor(1, 1) == 1.0 and dac_factor(2, 1) == 3.0 and dac_factor(4, 1) == 15.0
    six = scale_periphery(comps, adc_bits=6)
    assert (six["adc"].power_mw, six["adc"].area_um2, six["adc"].bits) == (0.5, 300.0, 6)
    ten = scale_periphery(comps, adc_bits=10)
    assert (ten["adc"].power_mw, ten["adc"].area_um2, ten["adc"].bits) == (8.0, 4800.0, 10)
    assert scale_periphery(comps, adc_bits=8)["adc"] == comps["adc"]
    two = scale_periphery(comps, dac_bits=2)
    assert two["dac"].power_mw == pytest.approx(3 * 4.0 / 1024)  # 3 unit 1-bit DACs
    assert two["dac"].area_um2 == pytest.approx(3 * 170.0 / 1024)
    assert two["dac"].bits == 2 and two["adc"] is comps["adc"]
    # defaults: the reference periphery, every entry the very same object
    default = scale_periphery(comps)
    assert default.keys() == comps.keys()
    assert all(default[k] is comps[k] for k in comps)
    # other components never change
    assert all(six[k] is comps[k] for k in comps if k != "adc")
    # scaling composes exactly: 8 -> 6 -> 10 bits equals 8 -> 10; 1 -> 2 -> 4 equals 1 -> 4
    twice = scale_periphery(scale_periphery(comps, 6, 2), 10, 4)
    once = scale_periphery(comps, 10, 4)
    for k in ("adc", "dac"):
        assert twice[k].power_mw == pytest.approx(once[k].power_mw)
        assert twice[k].area_um2 == pytest.approx(once[k].area_um2)


def test_reference_bits_override():
    # A figure stated for a 10-bit ADC priced at 8 bits is a quarter of it.
    comps = load_components({"adc": {"power_mw": 8.0, "area_um2": 400.0, "bits": 10}})
    eight = scale_periphery(comps, adc_bits=8)["adc"]
    assert (eight.power_mw, eight.area_um2) == (2.0, 100.0)
    with pytest.raises(ValueError,
                       match=r"cost.components.adc.bits=17: expected an int in \[1, 16\]"):
        load_components({"adc.bits": 17})
    with pytest.raises(ValueError, match=r"cost.components.dac.bits=2.5: expected an int"):
        load_components({"dac.bits": 2.5})


TOY_COST_CFG = {"adc_columns": 2, "adcs_per_shift_add": 2, "components": TOY_FIGURES}


def toy_reductions(**kw):
    return reductions(TOY_SHAPES, TOY_SPEC, TOY_BITS, toy_masks(), scale="po2", cfg=TOY_COST_CFG,
                      unstructured_masks=toy_masks(), **kw)


def test_toy_reductions_with_a_lower_resolution_adc():
    # CRIMP (po2) counts of the toy masks: 16 crossbars, 32 ADCs, 64 DACs, 64 S&H, 16 S+A.
    # Reference periphery (ADC 2 mW / 20 um^2, DAC 1 / 1):
    #   power 16*1 + 32*2 + 64*1 + 64*0.5 + 16*3 = 224 mW
    #   area  16*10 + 32*20 + 64*1 + 64*2 + 16*30 = 1472 um^2
    # 6-bit ADCs (x 1/4: 0.5 mW, 5 um^2): power 224 - 32*1.5 = 176, area 1472 - 32*15 = 992.
    ref = toy_reductions()
    assert ref["crimp"]["total_power_mw"] == pytest.approx(224.0)
    assert ref["crimp"]["total_area_um2"] == pytest.approx(1472.0)
    assert ref["periphery_saving"] == {"power_x": 1.0, "area_x": 1.0}
    low = toy_reductions(adc_bits=6)
    assert low["crimp"]["counts"] == ref["crimp"]["counts"]  # resolution changes no count
    assert low["crimp"]["total_power_mw"] == pytest.approx(176.0)
    assert low["crimp"]["total_area_um2"] == pytest.approx(992.0)
    assert low["crimp_at_reference_periphery"] == pytest.approx(
        {"total_power_mw": 224.0, "total_area_um2": 1472.0})
    assert low["periphery_saving"]["power_x"] == pytest.approx(224.0 / 176.0)
    assert low["periphery_saving"]["area_x"] == pytest.approx(1472.0 / 992.0)
    # the references get the same periphery: dense original (float scales, 8 FP32 mults):
    #   24*1 + 48*0.5 + 96*1 + 96*0.5 + 24*3 + 8*2 = 280 mW, vs 352 at the reference.
    assert low["references"]["original"]["total_power_mw"] == pytest.approx(280.0)
    assert low["power_reduction"]["original"] == pytest.approx(280.0 / 176.0)
    assert ref["power_reduction"]["original"] == pytest.approx(352.0 / 224.0)
    # 2-bit DACs (3 units each, 3 mW): 176 + 64*2 = 304 mW; the DACs cost more than the
    # ADCs save, so the 'saving' is below 1.
    both = toy_reductions(adc_bits=6, dac_bits=2)
    assert both["crimp"]["total_power_mw"] == pytest.approx(304.0)
    assert both["periphery_saving"]["power_x"] == pytest.approx(224.0 / 304.0)
    assert both["periphery"]["dac"] == {"bits": 2, "power_mw": 3.0, "area_um2": 3.0}
    assert both["reference_periphery"]["dac"] == {"bits": 1, "power_mw": 1.0, "area_um2": 1.0}


def tiny_cnn_case():
    params = build_network("tiny_cnn").abstract_variables()["params"]
    masks = {}
    for path, shape in layer_shapes(params).items():
        m = np.ones(shape, np.float32)
        if len(shape) == 4:
            m[:, :, : shape[2] // 2, :] = 0.0
        masks[path] = m
    return params, XbarSpec(rows=32, cols=16), masks


def test_default_periphery_reproduces_todays_numbers_exactly():
    params, spec, masks = tiny_cnn_case()
    options, comps = cost_setup(default_cost_config())
    kw = dict(options=options, components=comps)
    # today's computation, written out: every scenario priced with the unscaled library
    crimp = model_cost(params, spec, 8, masks, pruning="crimp", scale="po2", **kw)
    original = model_cost(params, spec, 8, None, pruning="none", scale="float",
                          multiplier="fp32", **kw)
    for res in (reductions(params, spec, 8, masks, cfg=default_cost_config()),
                reductions(params, spec, 8, masks, cfg=default_cost_config(), adc_bits=0,
                           dac_bits=1),
                reductions(params, spec, 8, masks, cfg=default_cost_config(), adc_bits=8)):
        assert res["crimp"]["total_power_mw"] == crimp["total_power_mw"]
        assert res["crimp"]["total_area_um2"] == crimp["total_area_um2"]
        assert res["references"]["original"]["total_power_mw"] == original["total_power_mw"]
        assert res["power_reduction"]["original"] == (original["total_power_mw"]
                                                      / crimp["total_power_mw"])
        assert res["periphery_saving"] == {"power_x": 1.0, "area_x": 1.0}
        summary = cost_summary(res)
        assert summary["periphery_saving"] == {"power_x": 1.0, "area_x": 1.0}
        assert summary["power_mw_at_reference_periphery"] == summary["power_mw"]
        assert summary["periphery"] == summary["reference_periphery"]
        assert summary["periphery"]["adc"] == {"bits": 8, "power_mw": 2.0, "area_um2": 1200.0}
        assert summary["dac_bits"] == 1
    assert cost_summary(reductions(params, spec, 8, masks))["adc_bits"] == 0


def test_summary_records_the_periphery_and_its_saving():
    params, spec, masks = tiny_cnn_case()
    res = reductions(params, spec, 8, masks, cfg=default_cost_config(), adc_bits=6)
    summary = cost_summary(res)
    json.dumps(summary)  # JSON-ready
    assert (summary["adc_bits"], summary["dac_bits"]) == (6, 1)
    assert summary["periphery"]["adc"] == {"bits": 6, "power_mw": 0.5, "area_um2": 300.0}
    assert summary["periphery"]["dac"]["power_mw"] == pytest.approx(4.0 / 1024)
    assert summary["reference_periphery"]["adc"] == {"bits": 8, "power_mw": 2.0,
                                                     "area_um2": 1200.0}
    assert summary["periphery_saving"]["power_x"] > 1.0
    assert summary["periphery_saving"]["area_x"] > 1.0
    default = cost_summary(reductions(params, spec, 8, masks, cfg=default_cost_config()))
    assert summary["power_mw_at_reference_periphery"] == pytest.approx(default["power_mw"])
    assert summary["area_mm2_at_reference_periphery"] == pytest.approx(default["area_mm2"])
    assert summary["power_mw"] < default["power_mw"]
    assert summary["power_mw"] * summary["periphery_saving"]["power_x"] == pytest.approx(
        default["power_mw"])
    # the ADC saving shrinks every design, so the reductions still compare like with like
    assert summary["reference_power_mw"]["original"] < default["reference_power_mw"]["original"]


@pytest.mark.parametrize("kw, message", [
    (dict(adc_bits=17), r"adc_bits=17: expected an int in \[0, 16\]"),
    (dict(adc_bits=-1), r"adc_bits=-1: expected an int in \[0, 16\]"),
    (dict(adc_bits=6.0), r"adc_bits=6.0: expected an int in \[0, 16\]"),
    (dict(dac_bits=0), r"dac_bits=0: expected an int in \[1, 16\]"),
    (dict(dac_bits=17), r"dac_bits=17: expected an int in \[1, 16\]"),
    (dict(dac_bits=True), r"dac_bits=True: expected an int in \[1, 16\]"),
])
def test_bad_periphery_bits_are_clear_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        scale_periphery(load_components(), **kw)
    with pytest.raises(ValueError, match=message):
        reductions(TOY_SHAPES, TOY_SPEC, TOY_BITS, **kw)


def test_bit_limits_match_the_periphery_config():
    from crimp_jax.periphery import AdcSpec, DacSpec
    comps = load_components()
    scale_periphery(comps, AdcSpec(bits=16).bits, DacSpec(bits=16).bits)  # the largest accepted
    scale_periphery(comps, AdcSpec().bits, DacSpec().bits)  # the config defaults
