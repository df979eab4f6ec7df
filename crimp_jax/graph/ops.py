"""The op registry: one entry per graph op, saying everything the tool does with that op.

Each `OpDef` names how the op is

  read       from the model: `modules` (flax module classes, linen and NNX, read at their
             `__call__`: `crimp_jax.graph.calls`) or
             `primitives` (jax primitives of the traced forward, read by `read`);
  run        in float (`apply`): the BatchNorm-folded forward used by calibration, the
             fake-quantized (QAT) forward and Monte Carlo; a `crossbar` op's kernel is what
             quantization, pruning, variation and the cost model transform;
  quantized  `crossbar` ops have quantized weights and need quantized inputs; `requant` is
             the activation quantization point the graph inserts after every ReLU and before
             any crossbar layer whose input is not on a quantization grid; every other op
             keeps its input's grid (`keeps_grid`) or not;
  converted  to integers (`convert`): static bookkeeping of each value's per-channel exponent
             (value = integer * 2^e) and |integer| bound, emitting one engine step;
  run by the integer engine (`engine`): int32 only;
  counted    by the cost model: `crossbar` ops are the layers the cost model prices (their
             kernels, `crimp_jax.cost`); the digital ops cost nothing there;
  driven     on crossbar rows (`row_dot`, crossbar ops): what a range of rows of its layer
             matrix computes from the layer input (a conv: one convolution of the input
             channels those rows hold, `graph.arith.conv_rows_dot`), which the crossbar-faithful
             product (`crimp_jax.periphery`: DACs, per-tile ADC reads, shift-and-add) calls
             once per row tile, in float (Monte Carlo) and in the integer engine alike.

Adding an op is one `register(OpDef(...))` here and its test. The ops and their attributes:

  input     mean                      uint8 image minus the integer channel mean (exponent 0)
  conv      kernel, bias, strides, padding (explicit pairs), bn  (HWIO kernel; folded BN)
  dense     kernel, bias, bn
  relu
  requant   tap                       unsigned requantization at tap `tap` (clip to [0, 2^b-1])
  maxpool   window, strides, padding  (padding with -inf)
  sumpool   window, strides, padding  (zero padding; an average pool is a sumpool + scale)
  sum                                 sum over H, W (a global average pool is a sum + scale)
  scale     divisor                   x / divisor (integer engine: divisor = 2^k, a shift)
  flatten                             (N, H, W, C) -> (N, H*W*C)
  subsample strides                   x[:, ::sh, ::sw, :]
  pad       pads                      zero padding, ((0, 0), (t, b), (l, r), (c0, c1))
  add                                 residual add of two values
  concat                              channel concatenation (Inception/DenseNet-style branches)

Axis glossary: activations are NHWC (batch, height, width, channel) or (batch, features).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from crimp_jax.graph.arith import (
    CONV_DN,
    conv_int,
    conv_rows_dot,
    integral,
    rounding_shift,
)
from crimp_jax.periphery import (
    LayerPeriphery,
    crossbar_product,
    exact_pow2,
    tile_row_dot,
)

MAX_SHIFT = 30


class GraphError(ValueError):
    """A model the crossbar graph cannot represent (names the module path and the op)."""


class Val(NamedTuple):
    """Converter bookkeeping of one value: exponent and |integer| bound per channel (int64
    arrays), spatial size (h, w) or None for (N, features)."""

    e: np.ndarray
    bound: np.ndarray
    spatial: Optional[tuple]


@dataclasses.dataclass(frozen=True)
class OpDef:
    """One op kind (see the module docstring)."""

    kind: str
    apply: Callable  # (op, [x], FloatContext) -> y
    convert: Callable  # (op, [Val], ConvertContext) -> (engine step dict, Val)
    engine: Callable  # (step, [x], EngineContext) -> int32 y
    modules: tuple = ()  # flax module classes this op is read from
    read_module: Optional[Callable] = None  # (module, input shape, path) -> attrs
    primitives: tuple = ()  # jax primitives this op is read from
    read: Optional[Callable] = None  # (eqn, [state], Reader) -> out state
    crossbar: bool = False  # a layer on crossbars: kernel quantized/pruned/varied/costed
    keeps_grid: bool = False  # output on the input's quantization grid (no requant needed)
    nonneg: str = "inputs"  # 'always' | 'inputs' (iff all inputs are) | 'never'
    # crossbar ops: (op, x, w_rows, lo, hi, kernel_shape, impl) -> (..., N), what layer rows
    # [lo, hi) driven by input x contribute through w_rows (hi - lo, N); impl: the engine's
    # convolution implementation (int32 inputs)
    row_dot: Optional[Callable] = None


@dataclasses.dataclass(frozen=True, eq=False)
class CrossbarLayer:
    """One layer read through its periphery (`crimp_jax.periphery.product.crossbar_product`):
    per-cell read-outs `cells` (slice, polarity, row_tile, xrow, col) in level units (float32,
    or int32 in the engine), programmed cells `prog` (row_tile, xrow, col), the static
    `LayerPeriphery`, the ADC bits (int, or traced in a sweep) and, in float, the exponents of
    the weights (scalar or per column) and of the input. `probe(periphery, partial_sums)`: the
    calibration pass (ideal ADCs; receives the layer's `LayerPeriphery` and the partial sums
    of every ADC read)."""

    cells: object
    prog: object
    periphery: LayerPeriphery
    adc_bits: object
    e_w: object = None
    e_x: object = None
    probe: Optional[Callable] = None
    ste: bool = False  # training: the value of this product, the gradient of the plain layer
    adc_error: object = None  # (gain, offset) of the chip's ADCs (`periphery.adc_errors`)


REGISTRY: dict = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.kind in REGISTRY:
        raise ValueError(f"op {opdef.kind!r} registered twice")
    REGISTRY[opdef.kind] = opdef
    return opdef


def opdef(kind: str) -> OpDef:
    if kind not in REGISTRY:
        raise GraphError(f"unknown graph op {kind!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[kind]


# --- helpers ---------------------------------------------------------------------------------

def _spatial_out(hw, window, strides, padding):
    return tuple((d + lo + hi - k) // s + 1
                 for d, k, s, (lo, hi) in zip(hw, window, strides, padding))


def _pairs4(padding):
    return ((0, 0), *[tuple(p) for p in padding], (0, 0))


def _step(op, **extra):
    """The engine step of graph op `op` (same kind, inputs, output, name) with `extra`."""
    return {"op": op["op"], "in": list(op["in"]), "out": op["out"], "name": op["name"], **extra}


def _pads_2d(module_padding, in_hw, kernel, strides, path):
    """Explicit ((top, bottom), (left, right)) padding of a flax Conv's `padding`."""
    if isinstance(module_padding, str):
        if module_padding.upper() not in ("SAME", "VALID"):
            raise GraphError(f"module {path!r}: nn.Conv padding={module_padding!r} is not supported; "
                             "expected 'SAME', 'VALID' or explicit zero padding")
        return tuple(tuple(int(v) for v in p) for p in
                     lax.padtype_to_pads(in_hw, kernel, strides, module_padding.upper()))
    if isinstance(module_padding, int):
        return ((module_padding,) * 2,) * 2
    pads = tuple(module_padding)
    if len(pads) != 2:
        raise GraphError(f"module {path!r}: nn.Conv padding={module_padding!r}: expected 2 spatial dims")
    return tuple((int(p), int(p)) if isinstance(p, int) else tuple(int(v) for v in p)
                 for p in pads)


def _crossbar_mvm(op, x, xl: CrossbarLayer, kernel_shape, impl: str = "im2col"):
    """Integer-valued layer input x -> the layer's crossbar-faithful output (no bias)."""
    row_dot = opdef(op["op"]).row_dot

    def rows_dot(xin, w_rows, lo, hi):
        return row_dot(op, xin, w_rows, lo, hi, kernel_shape, impl)

    reads = None if xl.probe is None else []
    y = crossbar_product(x, xl.cells, xl.periphery, xl.adc_bits, xl.prog, probe=reads,
                         row_dot=rows_dot, adc_error=xl.adc_error)
    if xl.probe is not None:
        xl.probe(xl.periphery, reads)
    return y


def _crossbar_float(op, x, fx, xl: CrossbarLayer):
    """The fake-quantized layer through its periphery: x = integer * 2^e_x in, float out.

    With `xl.ste` (ADC-aware training, `crimp.adc_aware_epochs`) a straight-through
    estimator: the forward value is this product (DAC digits, ADC rounding and clipping), the
    gradient that of the plain layer with the same (effective) kernel, as if the periphery
    were the identity; nothing in the periphery has a useful derivative of its own (digits,
    rounding and clipping are piecewise constant or identity)."""
    x_int = jax.lax.stop_gradient(x) * exact_pow2(-jnp.asarray(xl.e_x))  # exact: on its grid
    y = _crossbar_mvm(op, x_int, xl, fx.param(op["kernel"]).shape)
    y = y * exact_pow2(jnp.asarray(xl.e_w) + xl.e_x) + fx.param(op["bias"])
    if not xl.ste:
        return y
    plain = opdef(op["op"]).apply(op, [x], dataclasses.replace(fx, xbar=None))
    return plain + jax.lax.stop_gradient(y - plain)


def _crossbar_engine(step, x, ex):
    """The integer engine's crossbar-faithful layer (a step converted with a periphery)."""
    xs = step["xbar"]
    ref = xs["periphery"]["calibrated_ref"]  # per-slice references: a JSON list
    lp = LayerPeriphery(**{**xs["periphery"], "place_log2": tuple(xs["periphery"]["place_log2"]),
                           "calibrated_ref": tuple(ref) if isinstance(ref, list) else ref})
    xl = CrossbarLayer(ex.arrays[xs["cells"]].astype(jnp.int32),
                       ex.arrays[xs["prog"]].astype(jnp.int32), lp, int(xs["adc_bits"]))
    y = _crossbar_mvm(step, x, xl, ex.arrays[step["w"]].shape, ex.impl)
    return y + ex.arrays[step["b"]].astype(jnp.int32)


def _layer_convert(op, ins, cx, spatial_fn):
    """Shared integer bookkeeping of conv and dense: int8 levels, int32 bias, bound."""
    (v,) = ins
    if np.any(v.e != v.e[0]):
        raise ValueError(f"layer {op['name']}: input exponents differ across channels")
    q, e_w = cx.wq[op["kernel"]]
    q = integral(q, op["kernel"])
    e_w = np.broadcast_to(integral(e_w, op["kernel"] + " exponent"), q.shape[-1:])
    qb = integral(cx.bq[op["bias"]][0], op["bias"])
    bits = cx.plan.wbits[op["kernel"]]
    if np.max(np.abs(q)) > 2 ** (bits - 1) - 1:
        raise ValueError(f"{op['kernel']}: levels outside the {bits}-bit range")
    absq = np.abs(q).reshape(-1, q.shape[-2], q.shape[-1])  # (kh*kw, cin, cout)
    bound = np.einsum("kio,i->o", absq, v.bound.astype(np.int64)) + np.abs(qb)
    acc_bits = cx.check(bound, f"layer {op['name']} accumulator")
    cx.arrays[f"{cx.key}.w"] = q.astype(np.int8)
    cx.arrays[f"{cx.key}.b"] = qb.astype(np.int32)
    xbar = cx.crossbar_step(op, q, bits, v, bound) if cx.periphery is not None else None
    cx.layers.append({"name": op["name"], "kernel": op["kernel"], "weight_bits": bits,
                      "input_tap": cx.plan.inputs[op["kernel"]],
                      "input_exponent": int(v.e[0]),
                      "weight_exponent": sorted(set(int(x) for x in e_w)),
                      "acc_bits": acc_bits})
    step = _step(op, w=f"{cx.key}.w", b=f"{cx.key}.b")
    if xbar is not None:
        step["xbar"] = xbar
    return step, Val(e_w + v.e[0], bound, spatial_fn(v.spatial, step))


# --- input -----------------------------------------------------------------------------------

def _input_apply(op, xs, fx):
    return fx.images.astype(jnp.float32) - jnp.asarray(op["mean"], jnp.float32)


def _input_convert(op, ins, cx):
    mean = np.asarray(op["mean"], np.int64)
    cx.arrays[f"{cx.key}.mean"] = mean.astype(np.int32)
    h, w, c = op["shape"]
    return ({"op": "input", "in": [], "out": op["out"], "name": op["name"],
             "mean": f"{cx.key}.mean"},
            Val(np.zeros(c, np.int64), np.maximum(mean, 255 - mean), (h, w)))


def _input_engine(step, xs, ex):
    return ex.images.astype(jnp.int32) - ex.arrays[step["mean"]].astype(jnp.int32)


register(OpDef("input", _input_apply, _input_convert, _input_engine, nonneg="never"))


# --- conv ------------------------------------------------------------------------------------

def _conv_read(module, shape, path):
    if len(shape) != 4:
        raise GraphError(f"module {path!r}: nn.Conv on a rank-{len(shape)} input; only 2-D "
                         "convolutions over NHWC activations are supported")
    kernel = tuple(int(k) for k in module.kernel_size)
    if len(kernel) != 2:
        raise GraphError(f"module {path!r}: nn.Conv kernel_size={module.kernel_size}: expected 2-D")
    if module.feature_group_count != 1:
        raise GraphError(f"module {path!r}: nn.Conv feature_group_count={module.feature_group_count} "
                         "(a grouped or depthwise convolution) is not supported: a crossbar "
                         "layer is one dense matrix; use feature_group_count=1")
    for name in ("input_dilation", "kernel_dilation"):
        d = getattr(module, name)
        if d not in (None, 1) and tuple(np.broadcast_to(d, 2)) != (1, 1):
            raise GraphError(f"module {path!r}: nn.Conv {name}={d} is not supported (expected 1)")
    if getattr(module, "mask", None) is not None:
        raise GraphError(f"module {path!r}: nn.Conv with a mask is not supported")
    strides = module.strides or 1
    strides = tuple(int(s) for s in np.broadcast_to(strides, 2))
    padding = _pads_2d(module.padding, tuple(shape[1:3]), kernel, strides, path)
    return {"strides": strides, "padding": padding, "use_bias": bool(module.use_bias),
            "features": _features(module)}


def _features(module) -> int:
    """Output features of a linen (`features`) or NNX (`out_features`) Conv/Dense."""
    return int(getattr(module, "features", None) or module.out_features)


def _conv_apply(op, xs, fx):
    xl = fx.crossbar(op)
    if xl is not None:
        return _crossbar_float(op, xs[0], fx, xl)
    w = fx.param(op["kernel"])
    y = lax.conv_general_dilated(xs[0], w, tuple(op["strides"]), tuple(map(tuple, op["padding"])),
                                 dimension_numbers=CONV_DN)
    return y + fx.param(op["bias"])


def _conv_convert(op, ins, cx):
    q_shape = cx.wq[op["kernel"]][0].shape

    def spatial(hw, step):
        step["strides"] = [int(s) for s in op["strides"]]
        step["padding"] = [[int(a), int(b)] for a, b in op["padding"]]
        return _spatial_out(hw, q_shape[:2], op["strides"], op["padding"])

    return _layer_convert(op, ins, cx, spatial)


def _conv_engine(step, xs, ex):
    if "xbar" in step:
        return _crossbar_engine(step, xs[0], ex)
    y = conv_int(xs[0], ex.arrays[step["w"]].astype(jnp.int32), step["strides"],
                 step["padding"], ex.impl)
    return y + ex.arrays[step["b"]].astype(jnp.int32)


def _conv_row_dot(op, x, w_rows, lo, hi, kernel_shape, impl):
    return conv_rows_dot(x, w_rows, lo, hi, kernel_shape[:2], op["strides"], op["padding"], impl)


register(OpDef("conv", _conv_apply, _conv_convert, _conv_engine, modules=(nn.Conv, nnx.Conv),
               read_module=_conv_read, crossbar=True, nonneg="never", row_dot=_conv_row_dot))


# --- dense -----------------------------------------------------------------------------------

def _dense_read(module, shape, path):
    if len(shape) != 2:
        raise GraphError(f"module {path!r}: nn.Dense on a rank-{len(shape)} input {tuple(shape)}; "
                         "flatten (reshape to (N, features)) or pool it first")
    return {"use_bias": bool(module.use_bias), "features": _features(module)}


def _dense_apply(op, xs, fx):
    xl = fx.crossbar(op)
    if xl is not None:
        return _crossbar_float(op, xs[0], fx, xl)
    y = lax.dot_general(xs[0], fx.param(op["kernel"]), (((1,), (0,)), ((), ())))
    return y + fx.param(op["bias"])


def _dense_convert(op, ins, cx):
    return _layer_convert(op, ins, cx, lambda hw, step: None)


def _dense_engine(step, xs, ex):
    if "xbar" in step:
        return _crossbar_engine(step, xs[0], ex)
    y = lax.dot_general(xs[0], ex.arrays[step["w"]].astype(jnp.int32),
                        (((1,), (0,)), ((), ())), preferred_element_type=jnp.int32)
    return y + ex.arrays[step["b"]].astype(jnp.int32)


def _dense_row_dot(op, x, w_rows, lo, hi, kernel_shape, impl):
    return tile_row_dot(x, w_rows, lo, hi)  # a dense input (N, features) is its own rows


register(OpDef("dense", _dense_apply, _dense_convert, _dense_engine,
               modules=(nn.Dense, nnx.Linear),
               read_module=_dense_read, crossbar=True, nonneg="never",
               row_dot=_dense_row_dot))


# --- batchnorm (read only: folded into the conv/dense before it by the graph builder) --------

def _bn_read(module, shape, path):
    if module.axis not in (-1, len(shape) - 1):
        raise GraphError(f"module {path!r}: nn.BatchNorm axis={module.axis}: only the channel (last) "
                         "axis can be folded")
    return {"epsilon": float(module.epsilon), "use_scale": bool(module.use_scale),
            "use_bias": bool(module.use_bias)}


def _folded_only(op, *a):
    raise GraphError(f"{op['name']}: a BatchNorm left in the graph (it is folded into the "
                     "Conv/Dense before it)")


register(OpDef("batchnorm", _folded_only, _folded_only, _folded_only, modules=(nn.BatchNorm, nnx.BatchNorm),
               read_module=_bn_read, nonneg="never"))


# --- relu ------------------------------------------------------------------------------------

def _relu_read(eqn, args, rd):
    g, c, _ = rd.split(args, eqn, "max")
    if np.any(np.asarray(c) != 0):
        raise rd.error(eqn, "max with something other than 0 (only ReLU, max(x, 0), is "
                            "supported)")
    return rd.emit("relu", [g], eqn)


def _relu_convert(op, ins, cx):
    return _step(op), ins[0]


register(OpDef("relu", lambda op, xs, fx: jnp.maximum(xs[0], 0.0), _relu_convert,
               lambda step, xs, ex: jnp.maximum(xs[0], 0), primitives=("max",), read=_relu_read,
               keeps_grid=True, nonneg="always"))


# --- requant (inserted by the graph builder) -------------------------------------------------

def _requant_convert(op, ins, cx):
    (v,) = ins
    tap = op["tap"]
    bits = cx.plan.abits[tap]
    e_tap = int(integral(cx.e_taps[tap], tap))
    shift = e_tap - v.e
    pos, neg = np.maximum(shift, 0), np.maximum(-shift, 0)
    cx.check(v.bound + np.where(pos > 0, 2 ** np.maximum(pos - 1, 0), 0), f"tap {tap} rounding")
    cx.check(v.bound << neg, f"tap {tap} left shift")
    name = cx.shift_array(f"{cx.key}.shift", shift, f"tap {tap}")
    qmax = 2 ** bits - 1
    step = _step(op, shift=name, qmax=qmax, tap=tap)
    return step, Val(np.full_like(v.e, e_tap), np.full_like(v.bound, qmax), v.spatial)


def _requant_engine(step, xs, ex):
    return jnp.clip(rounding_shift(xs[0], ex.arrays[step["shift"]]), 0, step["qmax"])


register(OpDef("requant", lambda op, xs, fx: fx.act(op["tap"], xs[0]), _requant_convert,
               _requant_engine, keeps_grid=True, nonneg="always"))


# --- pooling ---------------------------------------------------------------------------------

def _window_read(kind):
    def read(eqn, args, rd):
        (g,) = rd.graph_args(args, eqn)
        p = eqn.params
        win, strides, pads = p["window_dimensions"], p["window_strides"], p["padding"]
        if (len(win) != 4 or win[0] != 1 or win[3] != 1 or strides[0] != 1 or strides[3] != 1
                or tuple(pads[0]) != (0, 0) or tuple(pads[3]) != (0, 0)
                or any(d != 1 for d in p["base_dilation"] + p["window_dilation"])):
            raise rd.error(eqn, "pooling must act on H and W of NHWC activations only, "
                                "without dilation")
        return rd.emit(kind, [g], eqn, window=tuple(int(w) for w in win[1:3]),
                       strides=tuple(int(s) for s in strides[1:3]),
                       padding=tuple(tuple(int(v) for v in q) for q in pads[1:3]))
    return read


def _pool_spatial(op, v):
    return _spatial_out(v.spatial, op["window"], op["strides"], op["padding"])


def _pool_step(op):
    return _step(op, window=list(op["window"]), strides=list(op["strides"]),
                 padding=[list(p) for p in op["padding"]])


def _maxpool_apply(op, xs, fx):
    return lax.reduce_window(xs[0], -jnp.inf, lax.max, (1, *op["window"], 1),
                             (1, *op["strides"], 1), _pairs4(op["padding"]))


def _maxpool_convert(op, ins, cx):
    (v,) = ins
    return _pool_step(op), Val(v.e, v.bound, _pool_spatial(op, v))


def _maxpool_engine(step, xs, ex):
    return lax.reduce_window(xs[0], jnp.iinfo(jnp.int32).min, lax.max, (1, *step["window"], 1),
                             (1, *step["strides"], 1), _pairs4(step["padding"]))


register(OpDef("maxpool", _maxpool_apply, _maxpool_convert, _maxpool_engine,
               primitives=("reduce_window_max",), read=_window_read("maxpool"),
               keeps_grid=True))


def _sumpool_apply(op, xs, fx):
    return lax.reduce_window(xs[0], 0.0, lax.add, (1, *op["window"], 1), (1, *op["strides"], 1),
                             _pairs4(op["padding"]))


def _sumpool_convert(op, ins, cx):
    (v,) = ins
    bound = v.bound * int(np.prod(op["window"]))
    cx.check(bound, f"{op['name']} window sum")
    return _pool_step(op), Val(v.e, bound, _pool_spatial(op, v))


def _sumpool_engine(step, xs, ex):
    return lax.reduce_window(xs[0], jnp.int32(0), lax.add, (1, *step["window"], 1),
                             (1, *step["strides"], 1), _pairs4(step["padding"]))


register(OpDef("sumpool", _sumpool_apply, _sumpool_convert, _sumpool_engine,
               primitives=("reduce_window_sum",), read=_window_read("sumpool")))


def _sum_read(eqn, args, rd):
    (g,) = rd.graph_args(args, eqn)
    axes = tuple(eqn.params["axes"])
    if len(g.shape) != 4 or axes != (1, 2):
        norm = (0 in axes or len(g.shape) - 1 in axes) and len(axes) > 1
        raise rd.error(eqn, f"a sum over axes {axes} of a shape {g.shape} value (only the "
                            "spatial sum over H, W of NHWC is supported: global pooling)"
                       + ("; a statistic over the batch or the channels is a normalisation "
                          "computed inside the model (LayerNorm, GroupNorm or a BatchNorm "
                          "class of the model's own): use nn.BatchNorm right after its Conv"
                          if norm else ""))
    return rd.emit("sum", [g], eqn)


def _sum_convert(op, ins, cx):
    (v,) = ins
    bound = v.bound * (v.spatial[0] * v.spatial[1])
    cx.check(bound, f"{op['name']} spatial sum")
    return _step(op), Val(v.e, bound, None)


register(OpDef("sum", lambda op, xs, fx: jnp.sum(xs[0], axis=(1, 2)), _sum_convert,
               lambda step, xs, ex: jnp.sum(xs[0], axis=(1, 2), dtype=jnp.int32),
               primitives=("reduce_sum",), read=_sum_read))


# --- scale -----------------------------------------------------------------------------------

def _scale_read(eqn, args, rd):
    g, c, i = rd.split(args, eqn, eqn.primitive)
    if eqn.primitive == "div" and i != 0:
        raise rd.error(eqn, "a division by an activation (only scaling by a constant is "
                            "supported)")
    c = np.asarray(c, np.float64)
    if c.size > 1 and np.any(c != c.flat[0]) or c.flat[0] <= 0:
        raise rd.error(eqn, f"{eqn.primitive} by {c.ravel()[:4].tolist()}: only one positive "
                            "scalar factor is supported")
    divisor = float(c.flat[0]) if eqn.primitive == "div" else 1.0 / float(c.flat[0])
    src = rd.producer(g)
    if src is not None and src["op"] == "expand":  # the mean taken with keepdims=True
        src = rd.producer(src["in"][0])
    if src is not None and src["op"] == "sum" and divisor == np.prod(rd.shape_of(src["in"][0])[1:3]):
        label = "mean"  # names only: a global average pool is a sum + scale
    elif src is not None and src["op"] == "sumpool" and divisor == np.prod(src["window"]):
        label = "avgpool"
    else:
        label = "scale"
    return rd.emit("scale", [g], eqn, label=label, divisor=divisor)


def _scale_convert(op, ins, cx):
    (v,) = ins
    k = np.log2(op["divisor"])
    if k != np.round(k):
        raise ValueError(f"{op['name']}: division by {op['divisor']:g} is not a power of two, "
                         "so it is not a shift in the integer engine (pool over a power-of-two "
                         "number of positions, e.g. pad the input to a power-of-two size)")
    return _step(op, log2_divisor=int(k)), Val(v.e - int(k), v.bound, v.spatial)


register(OpDef("scale", lambda op, xs, fx: xs[0] / op["divisor"], _scale_convert,
               lambda step, xs, ex: xs[0], primitives=("div", "mul"), read=_scale_read))


# --- flatten, expand, subsample, pad ---------------------------------------------------------

def _flatten_read(eqn, args, rd):
    (g,) = rd.graph_args(args, eqn)
    out = tuple(eqn.outvars_shape)
    if out == tuple(g.shape):
        return g  # a reshape to the same shape is nothing
    if len(g.shape) == 4 and out == (g.shape[0], int(np.prod(g.shape[1:]))):
        return rd.emit("flatten", [g], eqn)
    raise rd.error(eqn, f"a reshape {tuple(g.shape)} -> {out} (only flattening NHWC to "
                        "(N, H*W*C) is supported)")


def _flatten_convert(op, ins, cx):
    (v,) = ins
    n = v.spatial[0] * v.spatial[1]
    return _step(op), Val(np.tile(v.e, n), np.tile(v.bound, n), None)


def _flatten(op, xs, ctx):
    return xs[0].reshape(xs[0].shape[0], -1)


register(OpDef("flatten", _flatten, _flatten_convert, _flatten,
               primitives=("reshape", "squeeze"), read=_flatten_read, keeps_grid=True))


def _expand_read(eqn, args, rd):
    (g,) = rd.graph_args(args, eqn)
    out = tuple(eqn.outvars_shape)
    if (len(g.shape) != 2 or out != (g.shape[0], 1, 1, g.shape[1])
            or tuple(eqn.params["broadcast_dimensions"]) != (0, 3)):
        raise rd.error(eqn, f"a broadcast {tuple(g.shape)} -> {out} (only (N, C) -> "
                            "(N, 1, 1, C), the global mean with keepdims=True, is supported)")
    return rd.emit("expand", [g], eqn)


def _expand_convert(op, ins, cx):
    (v,) = ins
    return _step(op), Val(v.e, v.bound, (1, 1))


def _expand(op, xs, ctx):
    return xs[0][:, None, None, :]


# (N, C) -> (N, 1, 1, C): `jnp.mean(x, (1, 2), keepdims=True)` (a PyTorch-style adaptive
# average pool), read back by a flatten or by a 1x1 convolution
register(OpDef("expand", _expand, _expand_convert, _expand, primitives=("broadcast_in_dim",),
               read=_expand_read, keeps_grid=True))


def _subsample_read(eqn, args, rd):
    (g,) = rd.graph_args(args, eqn)
    p = eqn.params
    strides = tuple(p["strides"] or (1,) * len(g.shape))
    if (len(g.shape) != 4 or any(p["start_indices"]) or tuple(p["limit_indices"]) != tuple(g.shape)
            or strides[0] != 1 or strides[3] != 1):
        raise rd.error(eqn, "a slice other than a strided spatial subsample x[:, ::s, ::s, :]")
    return rd.emit("subsample", [g], eqn, strides=tuple(int(s) for s in strides[1:3]))


def _subsample(op, xs, ctx):
    sh, sw = op["strides"]
    return xs[0][:, ::sh, ::sw, :]


def _subsample_convert(op, ins, cx):
    (v,) = ins
    hw = tuple(-(-d // s) for d, s in zip(v.spatial, op["strides"]))
    return (_step(op, strides=list(op["strides"])), Val(v.e, v.bound, hw))


register(OpDef("subsample", _subsample, _subsample_convert, _subsample, primitives=("slice",),
               read=_subsample_read, keeps_grid=True))


def _pad_read(eqn, args, rd):
    g, c, _ = rd.split(args, eqn, "pad")
    cfg = eqn.params["padding_config"]
    if np.asarray(c) != 0 or any(i != 0 or lo < 0 or hi < 0 for lo, hi, i in cfg):
        raise rd.error(eqn, "padding other than non-negative zero padding")
    if len(g.shape) != 4 or tuple(cfg[0][:2]) != (0, 0):
        raise rd.error(eqn, "padding of the batch axis or of a non-NHWC value")
    return rd.emit("pad", [g], eqn, pads=tuple((int(lo), int(hi)) for lo, hi, _ in cfg))


def _pad(op, xs, ctx):
    return jnp.pad(xs[0], tuple(map(tuple, op["pads"])))


def _pad_convert(op, ins, cx):
    (v,) = ins
    _, (t, b), (l, r), (c0, c1) = op["pads"]
    e = np.pad(v.e, (c0, c1), mode="edge")  # padded channels are 0 at any exponent
    bound = np.pad(v.bound, (c0, c1))
    hw = (v.spatial[0] + t + b, v.spatial[1] + l + r)
    return _step(op, pads=[list(p) for p in op["pads"]]), Val(e, bound, hw)


register(OpDef("pad", _pad, _pad_convert, _pad, primitives=("pad",), read=_pad_read,
               keeps_grid=True))


# --- add -------------------------------------------------------------------------------------

def _add_read(eqn, args, rd):
    gs = rd.graph_args(args, eqn, n=2)
    if tuple(gs[0].shape) != tuple(gs[1].shape):
        raise rd.error(eqn, f"an add of shapes {gs[0].shape} and {gs[1].shape} (a residual add "
                            "needs equal shapes: subsample and pad the shortcut explicitly)")
    return rd.emit("add", gs, eqn)


def _add_convert(op, ins, cx):
    a, s = ins
    e_c = np.minimum(a.e, s.e)
    la, ls = a.e - e_c, s.e - e_c
    ta, ts = a.bound << la, s.bound << ls
    cx.check(ta, f"residual {op['out']} first branch")
    cx.check(ts, f"residual {op['out']} second branch")
    cx.check(ta + ts, f"residual {op['out']} sum")
    step = _step(op, lshift=[cx.shift_array(f"{cx.key}.lshift0", la, op["out"]),
                             cx.shift_array(f"{cx.key}.lshift1", ls, op["out"])])
    return step, Val(e_c, ta + ts, a.spatial)


def _add_engine(step, xs, ex):
    return sum(jnp.left_shift(x, ex.arrays[k].astype(jnp.int32))
               for x, k in zip(xs, step["lshift"]))


register(OpDef("add", lambda op, xs, fx: xs[0] + xs[1], _add_convert, _add_engine,
               primitives=("add",), read=_add_read))


# --- concat ----------------------------------------------------------------------------------

def _concat_read(eqn, args, rd):
    gs = rd.graph_args(args, eqn, n=len(args))
    rank = len(gs[0].shape)
    if eqn.params["dimension"] not in (rank - 1, -1):
        raise rd.error(eqn, f"a concatenation along axis {eqn.params['dimension']} (only the "
                            "channel axis is supported)")
    return rd.emit("concat", gs, eqn)


def _concat_convert(op, ins, cx):
    return (_step(op),
            Val(np.concatenate([v.e for v in ins]), np.concatenate([v.bound for v in ins]),
                ins[0].spatial))


def _concat(op, xs, ctx):
    return jnp.concatenate(xs, axis=-1)


register(OpDef("concat", _concat, _concat_convert, _concat, primitives=("concatenate",),
               read=_concat_read))


def module_kind(module) -> Optional[str]:
    """The op kind read from flax module `module`'s `__call__` (linen or NNX), or None."""
    for kind, d in REGISTRY.items():
        if d.modules and isinstance(module, d.modules):
            return kind
    return None


def primitive_kinds() -> dict:
    """{jax primitive name: op kind} of every registered op read from a primitive."""
    return {p: kind for kind, d in REGISTRY.items() for p in d.primitives}
