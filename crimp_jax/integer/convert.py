"""Converter: folded params + power-of-two quantization state -> integer artifact.

It replays the graph (`crimp_jax.graph`) with static bookkeeping per value: the exponent of
each channel (value = integer * 2^exponent) and a worst-case bound on |integer|. Each op's
registry entry (`crimp_jax.graph.ops`, `OpDef.convert`) emits its engine step:

* conv/dense: int8 weights q and int32 biases at exponent e_w + e_x (the very integers the
  fake-quant forward uses, computed by the same functions);
* requant (a tap): one rounding right shift by e_tap - e_acc per channel (a negative amount is
  an exact left shift), then a clip to [0, 2^b - 1];
* residual add: both branches left-shifted (exactly) to the smaller of their exponents, added
  in int32; the following requant shifts from there;
* sum and sum pooling: int32 sums; a scale by 2^-k (the mean of a global or average pool) only
  lowers the exponent by k, and the rounding shift by k is folded into the next requant (one
  rounding, as in the fake-quant forward, which quantizes the float mean);
* relu, max pool, flatten, subsample, zero pad: unchanged exponents;
* logits: int32 at a common exponent (per-channel weight scales are aligned by left shifts).

Every accumulator, rounding intermediate and shifted term is checked against a 31-bit signed
width (|v| < 2^30, leaving the rounding offset room in int32); wider layers are refused with an
error naming the layer, the width and the bound.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import numpy as np

from crimp_jax.graph import ops as gops
from crimp_jax.graph.arith import Checker, signed_width  # noqa: F401 (re-exported)
from crimp_jax.integer.artifact import Artifact
from crimp_jax.periphery import Periphery, adc_range, adc_step_log2
from crimp_jax.periphery.reader import layer_input, layer_periphery_of
from crimp_jax.quant.fake import (
    act_exponent,
    make_plan,
    quantize_biases_int,
    quantize_weights_int,
)
from crimp_jax.variation.config import VariationSpec
from crimp_jax.variation.device import layer_cells

MAX_ACC_BITS = 31
MAX_SHIFT = gops.MAX_SHIFT


@dataclasses.dataclass
class ConvertContext:
    """What an op's `convert` reads and writes: the quantized integers, the artifact's arrays,
    its layer table, the width checker, and `key` (the current op's array-name prefix)."""

    plan: object
    wq: dict
    bq: dict
    e_taps: dict
    check: Checker
    arrays: dict = dataclasses.field(default_factory=dict)
    layers: list = dataclasses.field(default_factory=list)
    key: str = ""
    periphery: Optional[Periphery] = None  # crossbar-faithful layers (ADC datapath)
    masks: dict = dataclasses.field(default_factory=dict)

    def crossbar_step(self, op, q, weight_bits, v, bound):
        """The `xbar` entry of a layer step converted with a periphery: the ideal cells' levels
        (int8, slice x polarity x row tile x row x column), the programmed cells, the static
        `LayerPeriphery` and the ADC bits; checks the shift-and-add accumulator's width."""
        per = self.periphery
        kernel = op["kernel"]
        in_bits, signed = layer_input(self.plan, kernel)
        lp = layer_periphery_of(op["name"], q.shape, per, weight_bits, in_bits, signed)
        if lp.g_min:
            raise ValueError(f"layer {op['name']!r}: the integer engine reads ideal cells "
                             "(no G_min current); convert with the periphery's on_off_ratio "
                             "at 0 (adc.g_min_in_range models the analog chip only)")
        read = layer_cells(q.astype(np.float32), None, per.xbar, VariationSpec(mode=per.mode),
                           weight_bits, self.masks.get(kernel))
        cells = np.asarray(read.values)
        self.arrays[f"{self.key}.cells"] = cells.astype(np.int8 if cells.max() < 128 else np.int32)
        self.arrays[f"{self.key}.prog"] = np.asarray(read.prog).astype(np.int8)
        bits = per.adc.bits
        lo, hi = adc_range(bits, lp.signed_adc)
        a = adc_step_log2(lp.full_scale_levels(), bits, lp.signed_adc)
        # |one ADC read| <= min(top code, an ideal tile's largest sum rounded up) * 2^a
        per_read = min(hi << a, lp.max_partial_sum + ((1 << a) >> 1))
        reads = cells.shape[2] * sum(2 ** p for p in lp.place_log2) * lp.reads_per_cycle
        worst = per_read * reads * sum(2 ** (k * lp.dac_bits) for k in range(lp.cycles))
        worst = worst * (2 if signed else 1) + lp.offset * int(np.max(v.bound)) * lp.rows \
            * cells.shape[2]
        self.check(np.asarray([worst + int(np.max(bound))], np.int64),
                   f"layer {op['name']} shift-and-add of ADC codes")
        return {"cells": f"{self.key}.cells", "prog": f"{self.key}.prog", "adc_bits": bits,
                "periphery": dataclasses.asdict(lp)}

    def shift_array(self, name, shift, what):
        """Stores an int32 shift-amount array, refusing shifts beyond +-MAX_SHIFT."""
        if np.any(shift > MAX_SHIFT) or np.any(shift < -MAX_SHIFT):
            raise ValueError(f"{what}: shift {shift.tolist()} outside +-{MAX_SHIFT}; the "
                             "exponents of this layer and its input are too far apart")
        self.arrays[name] = shift.astype(np.int32)
        return name


@functools.partial(jax.jit, static_argnums=(0, 1))
def _quantize(graph, spec, params, qstate):
    """The integers of the fake-quant forward, computed by the same functions (one compile)."""
    plan = make_plan(graph, spec)
    wq = quantize_weights_int(graph, params, qstate, spec)
    bq = quantize_biases_int(graph, params, qstate, spec, {p: e for p, (_, e) in wq.items()})
    return wq, bq, {tap: act_exponent(plan, qstate, tap) for tap in plan.abits}


def convert(graph, params, qstate, qcfg, *, model_name: str = "",
            max_acc_bits: int = MAX_ACC_BITS, periphery: Optional[Periphery] = None,
            masks: Optional[dict] = None):
    """-> Artifact (not yet saved) for the folded `graph` with folded `params` and `qstate`.

    periphery: with finite ADCs (`periphery.adc.bits > 0`), every crossbar layer runs
    crossbar-faithfully in the engine (DAC cycles, per-tile ADC reads as a rounding shift and a
    clip, shift-and-add), bit-exact with `fake_quant_apply(..., crossbar=...)` on ideal cells
    (`crimp_jax.periphery.reader`); masks ({kernel path: 0/1}) say which rows are programmed."""
    plan = make_plan(graph, qcfg)
    if plan.spec.scale_mode != "po2":
        raise ValueError(f"quant.scale_mode={plan.spec.scale_mode!r} cannot be deployed: the "
                         "integer engine needs power-of-two scales ('po2')")
    wq, bq, e_taps = jax.device_get(_quantize(graph, plan.spec, params, qstate))
    if periphery is not None and periphery.adc.ideal:
        periphery = None  # ideal ADCs: the one-matmul layers compute the same integers
    cx = ConvertContext(plan, wq, bq, e_taps, Checker(max_acc_bits), periphery=periphery,
                        masks={k: np.asarray(m, np.float32) for k, m in (masks or {}).items()})
    prog, vals = [], {}
    for i, op in enumerate(graph.ops):
        cx.key = f"op{i}"
        step, vals[op["out"]] = gops.opdef(op["op"]).convert(op, [vals[v] for v in op["in"]], cx)
        prog.append(step)

    last = graph.output
    e_out = vals[last].e
    e_min = int(np.min(e_out))
    if np.any(e_out != e_min):
        shift = e_out - e_min
        cx.check(vals[last].bound << shift, "logit alignment")
        prog.append({"op": "lshift", "in": [last], "out": "logits", "name": "logits",
                     "shift": cx.shift_array("logits.lshift", shift, "logit alignment")})
        last = "logits"
    header = {"model": model_name, "model_type": graph.model_type,
              "num_classes": int(e_out.shape[0]), "input_shape": list(graph.input_shape),
              "ops": prog, "output": last, "output_exponent": e_min, "layers": cx.layers,
              "max_acc_bits": max_acc_bits, "acc_widths": cx.check.widths,
              "periphery": None if periphery is None else {
                  "adc": dataclasses.asdict(periphery.adc), "dac": dataclasses.asdict(periphery.dac),
                  "mode": periphery.mode},
              "quant": {"per_channel": plan.spec.per_channel,
                        "act_bits": dict(plan.abits), "weight_bits": dict(plan.wbits)}}
    return Artifact(header, cx.arrays)
