"""A chip read crossbar-faithfully: per-cell read-outs through DACs, ADCs and shift-and-add.

`crossbar_reader(graph, plan, periphery, reads)` returns the `crossbar(wq, e_x)` hook of
`crimp_jax.quant.fake_quant_apply`: for every crossbar layer a `graph.ops.CrossbarLayer` of the
cells `reads(wq)` gives ({kernel path: (values, programmed)}: one chip's cells after the
device stages, `perturb.read_chip`, or the ideal levels, `ideal_reads`) and the layer's static
`LayerPeriphery`. The integer converter
builds the same `LayerPeriphery` from the same function (`layer_periphery_of`), so the
fake-quantized ADC path and the integer engine's crossbar mode describe one datapath.
`calibrate_periphery` measures the per-layer ADC references of adc.full_scale_ref =
'calibrated' on training images.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from crimp_jax.graph.ops import CrossbarLayer
from crimp_jax.periphery import (
    LayerPeriphery,
    Periphery,
    adc_errors,
    column_adcs,
    layer_periphery,
    read_reference,
)
from crimp_jax.quant import fake_quant_apply, make_plan
from crimp_jax.variation.config import VariationSpec
from crimp_jax.variation.device import layer_cells
from crimp_jax.variation.perturb import path_id
from crimp_jax.xbar.cells import max_level
from crimp_jax.xbar.config import num_slices
from crimp_jax.xbar.view import tile_geometry

PIXEL_BITS = 8  # |uint8 pixel - integer mean| <= 255: the first layers' signed inputs
_ADC_STREAM = 0xADC  # fold_in tag of a chip's ADC errors


def layer_input(plan, kernel: str) -> tuple:
    """(magnitude bits, signed) of a crossbar layer's input: its tap's activation bits
    (unsigned), or the centred pixels (8 bits, signed)."""
    tap = plan.inputs[kernel]
    return (PIXEL_BITS, True) if tap is None else (plan.abits[tap], False)


def layer_periphery_of(name: str, kernel_shape, per: Periphery, weight_bits: int, in_bits: int,
                       signed: bool) -> LayerPeriphery:
    """The static periphery facts of one layer (cell layout as `device.cell_levels`)."""
    spec = per.xbar
    if per.mode == "cell":
        place = tuple(s * spec.bits_per_cell for s in range(num_slices(spec, weight_bits)))
        lmax = max_level(spec)
    else:
        place = (0,)
        lmax = 2 ** (weight_bits - 1) - 1 if spec.differential else 2 ** weight_bits - 1
    offset = 0 if spec.differential else 2 ** (weight_bits - 1)
    return layer_periphery(name, tile_geometry(kernel_shape, spec), lmax, place,
                           spec.differential, offset, in_bits, signed, per.adc, per.dac,
                           per.reference(name), per.g_min(lmax))


def ideal_reads(per: Periphery, bits, masks=None):
    """reads(wq) of an ideal chip: every cell reads its intended level (no random draw)."""
    vspec = VariationSpec(mode=per.mode)
    masks = masks or {}

    def reads(wq):
        out = {}
        for k, (q, _) in wq.items():
            r = layer_cells(q, None, per.xbar, vspec, bits[k], masks.get(k))
            out[k] = (r.values, r.prog)
        return out

    return reads


def crossbar_reader(graph, plan, per: Periphery, reads, knobs=None, probe=None,
                    ste: bool = False, key=None):
    """The `crossbar(wq, e_x)` hook of `fake_quant_apply` (see module docstring); `knobs`: the
    sweep's traced mapping (`crimp_jax.variation.knobs`), of which the ADCs read `adc_bits`,
    `adc_gain_std` and `adc_offset_std` (overriding the `adc` block: a sweep compiles once);
    `probe`: the calibration callback of every layer (`graph.ops.CrossbarLayer.probe`); `ste`:
    training through the product (`graph.ops.CrossbarLayer.ste`); `key`: the chip's key, from
    which its ADCs' gain and offset errors are drawn (`adc.gain_std`, `adc.offset_std`; one
    stream per layer, one draw per ADC: `Periphery.adc_columns` columns share one; None: ideal
    conversions)."""
    knobs = knobs or {}
    bits = knobs.get("adc_bits", per.adc.bits)
    gain_std = knobs.get("adc_gain_std", per.adc.gain_std)
    offset_std = knobs.get("adc_offset_std", per.adc.offset_std)
    errors = key is not None and not per.adc.ideal and (
        per.adc.has_errors or "adc_gain_std" in knobs or "adc_offset_std" in knobs)

    def crossbar(wq, e_x):
        cells = reads(wq)
        out = {}
        for op in graph.layers:
            k = op["kernel"]
            q, e = wq[k]
            lp = layer_periphery_of(op["name"], q.shape, per, plan.wbits[k],
                                    *layer_input(plan, k))
            values, prog = cells[k]
            err = None
            if errors:
                s, p, t, _, c = values.shape
                err = adc_errors(jax.random.fold_in(jax.random.fold_in(key, _ADC_STREAM),
                                                    path_id(k)),
                                 t, s * (1 if lp.signed_adc else p),
                                 column_adcs(c, per.xbar.cols, per.adc_columns),
                                 gain_std, offset_std)
            out[k] = CrossbarLayer(values, prog, lp, bits, e, e_x[k], probe, ste, err)
        return out

    return crossbar


def calibrate_periphery(graph, params, qstate, qcfg, per: Periphery, images, masks=None):
    """`per` with its calibrated ADC references (adc.full_scale_ref = 'calibrated'), else `per`.

    One pass of `images` (training images) through the fake-quantized model on the ideal chip
    with ideal ADCs (`crossbar_product(..., probe=...)`): each layer's reference is the
    `adc.calib_quantile` quantile of |partial sum| over all its ADC reads (input passes,
    cycles, row tiles, slices, polarities, columns, pixels; `periphery.product.read_reference`).
    The references depend on the DACs and the read mode, not on the ADC bits, so one
    calibration serves an ADC-bit sweep. One compile; returns plain floats (hashable)."""
    if not per.calibrated:
        return per
    plan = make_plan(graph, qcfg)
    probing = dataclasses.replace(per, adc=dataclasses.replace(
        per.adc, full_scale_ref="max", full_scale_per="layer"))
    quantile = per.adc.calib_quantile
    per_slice = per.adc.full_scale_per == "slice"

    @jax.jit
    def references(params, qstate, images):
        found = {}
        xr = crossbar_reader(graph, plan, probing, ideal_reads(probing, plan.wbits, masks),
                             probe=lambda lp, ps: found.__setitem__(lp.name, read_reference(
                                 ps, quantile, len(lp.place_log2) if per_slice else 0)))
        fake_quant_apply(graph, params, qstate, images, qcfg, crossbar=xr)
        return found

    found = jax.device_get(references(params, qstate, jnp.asarray(images)))
    return dataclasses.replace(per, references=tuple(sorted(
        (k, tuple(float(r) for r in v) if per_slice else float(v)) for k, v in found.items())))
