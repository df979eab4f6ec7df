"""Converter: folded params + power-of-two quantization state -> integer artifact.

It replays the layer graph (`crimp_jax.quant.graph`) with static bookkeeping per value: the
exponent of each channel (value = integer * 2^exponent) and a worst-case bound on |integer|.
From those it emits the engine program:

* conv/dense: int8 weights q and int32 biases at exponent e_w + e_x (the very integers the
  fake-quant forward uses, computed by the same functions);
* requant (ReLU + requantization at a Tap): one rounding right shift by e_tap - e_acc per
  channel (a negative amount is an exact left shift), then a clip to [0, 2^b - 1];
* residual add: both branches left-shifted (exactly) to the smaller of their exponents, added
  in int32; the following requant shifts from there;
* global average pool: an int32 sum over H x W; dividing by H*W = 2^k only lowers the exponent
  by k, and the rounding shift by k is folded into the next requant (one rounding, as in the
  fake-quant forward, which quantizes the float mean);
* max pool and flatten: unchanged exponents;
* logits: int32 at a common exponent (per-channel weight scales are aligned by left shifts).

Every accumulator, rounding intermediate and shifted term is checked against a 31-bit signed
width (|v| < 2^30, leaving the rounding offset room in int32); wider layers are refused with an
error naming the layer, the width and the bound.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from crimp_jax.integer.artifact import Artifact
from crimp_jax.models.layers import CIFAR10_MEAN_INT
from crimp_jax.quant.fake import (
    act_exponent,
    make_plan,
    quantize_biases_int,
    quantize_weights_int,
)

MAX_ACC_BITS = 31
MAX_SHIFT = 30


def signed_width(bound) -> int:
    """Bits of a signed integer holding every value in [-bound, bound] (sign included)."""
    return int(np.max(np.asarray(bound, dtype=object))).bit_length() + 1


class _Checker:
    def __init__(self, max_bits: int):
        self.max_bits = max_bits
        self.widths = {}

    def __call__(self, bound, what: str) -> int:
        width = signed_width(bound)
        self.widths[what] = max(width, self.widths.get(what, 0))
        if width > self.max_bits:
            raise ValueError(f"{what}: worst-case accumulator needs {width} bits (|v| <= "
                             f"{int(np.max(bound))}), above the {self.max_bits}-bit limit; "
                             "lower the bit widths or the thresholds of this layer")
        return width


def _integral(x, what: str) -> np.ndarray:
    x = np.asarray(jax.device_get(x), np.float64)
    r = np.round(x)
    if not np.all(r == x):
        raise ValueError(f"{what}: non-integral values; the integer engine needs power-of-two "
                         "scales (quant.scale_mode='po2')")
    return r.astype(np.int64)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _quantize(model, spec, params, qstate):
    """The integers of the fake-quant forward, computed by the same functions (one compile)."""
    plan = make_plan(model, spec)
    wq = quantize_weights_int(model, params, qstate, spec)
    bq = quantize_biases_int(model, params, qstate, spec, {p: e for p, (_, e) in wq.items()})
    return wq, bq, {tap: act_exponent(plan, qstate, tap) for tap in plan.abits}


def convert(model, params, qstate, qcfg, *, model_name: str = "", image_hw=(32, 32),
            max_acc_bits: int = MAX_ACC_BITS):
    """-> Artifact (not yet saved) for the folded `model` with folded `params` and `qstate`."""
    plan = make_plan(model, qcfg, image_hw)
    if plan.spec.scale_mode != "po2":
        raise ValueError(f"quant.scale_mode={plan.spec.scale_mode!r} cannot be deployed: the "
                         "integer engine needs power-of-two scales ('po2')")
    wq, bq, e_taps = jax.device_get(_quantize(model, plan.spec, params, qstate))
    check = _Checker(max_acc_bits)
    arrays, prog, layers = {}, [], []
    vals = {}  # name -> (exponent per channel, |int| bound per channel, (h, w))

    def shift_array(name, shift, what):
        if np.any(shift > MAX_SHIFT) or np.any(shift < -MAX_SHIFT):
            raise ValueError(f"{what}: shift {shift.tolist()} outside +-{MAX_SHIFT}; the "
                             "exponents of this layer and its input are too far apart")
        arrays[name] = shift.astype(np.int32)
        return name

    for i, op in enumerate(plan.ops):
        kind, key = op["op"], f"op{i}"
        if kind == "input":
            mean = np.asarray(CIFAR10_MEAN_INT, np.int64)
            arrays[f"{key}.mean"] = mean.astype(np.int32)
            vals[op["out"]] = (np.zeros(3, np.int64), np.maximum(mean, 255 - mean), image_hw)
            prog.append({"op": "input", "out": op["out"], "mean": f"{key}.mean"})
        elif kind in ("conv", "dense"):
            e_in, b_in, hw = vals[op["in"]]
            if np.any(e_in != e_in[0]):
                raise ValueError(f"layer {op['name']}: input exponents differ across channels")
            q, e_w = wq[op["kernel"]]
            q = _integral(q, op["kernel"])
            e_w = np.broadcast_to(_integral(e_w, op["kernel"] + " exponent"), q.shape[-1:])
            qb = _integral(bq[op["bias"]][0], op["bias"])
            bits = plan.wbits[op["kernel"]]
            if np.max(np.abs(q)) > 2 ** (bits - 1) - 1:
                raise ValueError(f"{op['kernel']}: levels outside the {bits}-bit range")
            absq = np.abs(q).reshape(-1, q.shape[-2], q.shape[-1])  # (kh*kw, cin, cout)
            bound = np.einsum("kio,i->o", absq, b_in.astype(np.int64)) + np.abs(qb)
            acc_bits = check(bound, f"layer {op['name']} accumulator")
            arrays[f"{key}.w"] = q.astype(np.int8)
            arrays[f"{key}.b"] = qb.astype(np.int32)
            step = {"op": kind, "in": op["in"], "out": op["out"], "w": f"{key}.w",
                    "b": f"{key}.b", "name": op["name"]}
            if kind == "conv":
                step["stride"] = int(op["stride"])
                hw = tuple(-(-d // op["stride"]) for d in hw)
            prog.append(step)
            vals[op["out"]] = (e_w + e_in[0], bound, hw)
            layers.append({"name": op["name"], "kernel": op["kernel"], "weight_bits": bits,
                           "input_tap": plan.inputs[op["kernel"]],
                           "input_exponent": int(e_in[0]),
                           "weight_exponent": sorted(set(int(v) for v in e_w)),
                           "acc_bits": acc_bits})
        elif kind == "requant":
            e_in, b_in, hw = vals[op["in"]]
            bits = plan.abits[op["tap"]]
            e_tap = int(_integral(e_taps[op["tap"]], op["tap"]))
            shift = e_tap - e_in
            pos, neg = np.maximum(shift, 0), np.maximum(-shift, 0)
            check(b_in + np.where(pos > 0, 2 ** np.maximum(pos - 1, 0), 0),
                  f"tap {op['tap']} rounding")
            check(b_in << neg, f"tap {op['tap']} left shift")
            name = shift_array(f"{key}.shift", shift, f"tap {op['tap']}")
            qmax = 2 ** bits - 1
            prog.append({"op": "requant", "in": op["in"], "out": op["out"], "shift": name,
                         "qmax": qmax, "tap": op["tap"]})
            vals[op["out"]] = (np.full_like(e_in, e_tap), np.full_like(b_in, qmax), hw)
        elif kind == "maxpool":
            e_in, b_in, hw = vals[op["in"]]
            k = int(op["window"])
            prog.append({"op": "maxpool", "in": op["in"], "out": op["out"], "window": k})
            vals[op["out"]] = (e_in, b_in, tuple(d // k for d in hw))
        elif kind == "add":
            e_a, b_a, hw = vals[op["in"]]
            e_s, b_s, _ = vals[op["shortcut"]]
            lo, hi = op["pad"]
            e_s = np.pad(e_s, (lo, hi), mode="edge")
            b_s = np.pad(b_s, (lo, hi))
            e_c = np.minimum(e_a, e_s)
            la, ls = e_a - e_c, e_s - e_c
            ta, ts = b_a << la, b_s << ls
            check(ta, f"residual {op['out']} conv branch")
            check(ts, f"residual {op['out']} shortcut branch")
            check(ta + ts, f"residual {op['out']} sum")
            prog.append({"op": "add", "in": op["in"], "shortcut": op["shortcut"],
                         "out": op["out"], "stride": int(op["stride"]), "pad": [lo, hi],
                         "lshift_in": shift_array(f"{key}.lshift_in", la, op["out"]),
                         "lshift_shortcut": shift_array(f"{key}.lshift_sc", ls, op["out"])})
            vals[op["out"]] = (e_c, ta + ts, hw)
        elif kind == "gap_sum":
            e_in, b_in, hw = vals[op["in"]]
            n = hw[0] * hw[1]
            if n != op["hw"] or n & (n - 1):
                raise ValueError(f"global average pool over {hw}: {n} positions is not a power "
                                 "of two, so the mean is not a shift")
            check(b_in * n, "global average pool sum")
            prog.append({"op": "gap_sum", "in": op["in"], "out": op["out"]})
            vals[op["out"]] = (e_in - (n.bit_length() - 1), b_in * n, (1, 1))
        elif kind == "flatten":
            e_in, b_in, hw = vals[op["in"]]
            n = hw[0] * hw[1]
            prog.append({"op": "flatten", "in": op["in"], "out": op["out"]})
            vals[op["out"]] = (np.tile(e_in, n), np.tile(b_in, n), (1, 1))
        else:
            raise ValueError(f"unknown graph op {kind!r}")

    last = plan.ops[-1]["out"]
    e_out, b_out, _ = vals[last]
    e_min = int(np.min(e_out))
    if np.any(e_out != e_min):
        l = e_out - e_min
        check(b_out << l, "logit alignment")
        prog.append({"op": "lshift", "in": last, "out": "logits",
                     "shift": shift_array("logits.lshift", l, "logit alignment")})
        last = "logits"
    header = {"model": model_name, "model_type": type(model).__name__,
              "num_classes": int(e_out.shape[0]), "input_shape": [*image_hw, 3],
              "ops": prog, "output": last, "output_exponent": e_min, "layers": layers,
              "max_acc_bits": max_acc_bits, "acc_widths": check.widths,
              "quant": {"per_channel": plan.spec.per_channel,
                        "act_bits": dict(plan.abits), "weight_bits": dict(plan.wbits)}}
    return Artifact(header, arrays)
