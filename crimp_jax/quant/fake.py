"""Fake-quantized (QAT) forward of a BN-folded graph: weight transform + activation quantizer.

State. The learned quantization state `qstate` is a plain pytree of float log2 thresholds,
trained next to the params:

    qstate = {'act':    {'relu0': {'log2_t': ()}, 's0b0': {'relu0': {'log2_t': ()}}, ...},
              'weight': {'conv0': {'conv': {'kernel': () or (cout,)}}, ...}}

`qstate['act']` holds one threshold per activation quantization point (tap) of the graph
(`crimp_jax.graph`: after every ReLU, and before a layer whose input is off the grid, e.g.
'mean0' after a global average pool); `qstate['weight']` mirrors the params tree (a scalar per
kernel, or one per output channel = crossbar column when `per_channel`).

Weights. `quantize_weights_int` exposes, per kernel path, the integer levels `q` (float array of
integral values, STE-differentiable) and the exponent `e` (integral-valued float, scalar or per
output channel): kernel = q * 2^e. A `weight_transform` ({path: (q, e)} -> {path: float kernel})
can replace that product, e.g. to perturb q with crossbar variation; the default is q * 2^e.

Biases are rounded to integers at the scale 2^(e_w + e_x), where e_x is the exponent of the
layer's input activation (the tap feeding it along the graph; 0 for the centred pixels). They
keep the nominal weight exponent even when `weight_transform` perturbs q.

Activations. `Graph.apply` calls `act_quantizer(plan, qstate['act'])` at every tap, which
fake-quantizes the tap's output unsigned with its own bit width; model files hold no
quantization code.

Exactness. With power-of-two scales every fake-quantized value is a small integer times 2^e,
so float32 convolutions are exact while partial sums stay below 2^24 * step, and the logits
equal the integer engine's bit for bit (tests/test_integer_engine.py). Levels of <= 8 bits (and
the 9-bit centred pixels) are also exact in TF32, so on an H200 the default matmul precision
was bit-exact for resnet20 and vgg16, whereas `jax.default_matmul_precision('highest')` was not
for vgg16 (cuDNN picks other algorithms): do not force 'highest' when comparing with the engine.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp

from crimp_jax.graph import Graph
from crimp_jax.graph import ops as gops
from crimp_jax.quant.config import QuantSpec, quant_spec, resolve_bits
from crimp_jax.quant.numerics import (
    clip_ste,
    fake_quant,
    lsq_grad_factor,
    pow2,
    quantize_levels,
    round_ste,
    scale_exponent,
)
from crimp_jax.utils.paths import flatten, unflatten

# Integer biases are kept within +-2^30 (exactly representable in float32 and int32); the
# converter's accumulator-width check refuses anything that large anyway.
BIAS_LIMIT = 2 ** 30


@dataclasses.dataclass(frozen=True)
class QuantPlan:
    """Static (Python) facts the quantizer and converter need about one graph."""

    spec: QuantSpec
    ops: tuple  # the graph's ops (crimp_jax.graph.Graph.ops)
    wbits: Mapping[str, int]  # kernel path -> weight bits
    abits: Mapping[str, int]  # tap path -> activation bits
    inputs: Mapping[str, Optional[str]]  # kernel path -> input tap (None: pixels)
    biases: Mapping[str, str]  # kernel path -> bias path
    # kernel path of a layer whose output is a residual add's branch -> the other branch's
    # exponent source: ('tap', tap path) | ('layer', kernel path) | ('pixels', None)
    partners: Mapping[str, tuple] = dataclasses.field(default_factory=dict)


def make_plan(graph, qcfg) -> QuantPlan:
    """Resolves the per-layer bit widths of `graph` (a `crimp_jax.graph.Graph`, e.g.
    `network.graph`) under the `quant` config."""
    spec = quant_spec(qcfg)
    if not isinstance(graph, Graph):
        raise ValueError(f"quantization works on the network's graph (network.graph), not on "
                         f"a {type(graph).__name__}")
    layers = graph.layers
    inputs = graph.input_taps()
    kernels = [op["kernel"] for op in layers]
    wbits, abits = resolve_bits(spec, kernels, graph.taps, kernels[0], kernels[-1],
                                inputs[kernels[-1]])
    return QuantPlan(spec, graph.ops, wbits, abits, inputs,
                     {op["kernel"]: op["bias"] for op in layers}, residual_partners(graph))


def residual_partners(graph) -> dict:
    """{kernel path: the other branch's exponent source} for every crossbar layer whose output
    is one branch of a residual add (see `QuantPlan.partners`); the source is found through
    the ops that keep a value's grid (subsampling, zero padding, pooling, flattening)."""
    by_out = {op["out"]: op for op in graph.ops}
    layer_of = {op["out"]: op for op in graph.layers}

    def source(value):
        op = by_out[value]
        while True:
            if op["op"] == "requant":
                return ("tap", op["tap"])
            if op["out"] in layer_of:
                return ("layer", op["kernel"])
            if op["op"] == "input":
                return ("pixels", None)
            if not gops.opdef(op["op"]).keeps_grid:
                return None
            op = by_out[op["in"][0]]

    out = {}
    for op in graph.ops:
        if op["op"] != "add":
            continue
        for mine, other in ((op["in"][0], op["in"][1]), (op["in"][1], op["in"][0])):
            src = source(other)
            if mine in layer_of and src is not None:
                out[layer_of[mine]["kernel"]] = src
    return out


def _get(flat, path, what):
    if path not in flat:
        raise ValueError(f"{what} {path!r} not found; available: {', '.join(flat)}")
    return flat[path]


def weight_exponents(plan: QuantPlan, params, qstate) -> dict:
    """{kernel path: e} (float, integral in 'po2' mode), with LSQ gradient scaling.

    A layer that is a residual add's branch (`plan.partners`) gets e >= e_other - e_x - K,
    where e_other is the other branch's exponent (from the thresholds before this floor),
    e_x its own input's exponent and K = quant.max_residual_shift: the integer engine aligns
    the branches by at most K bits, so its accumulators stay within 31 bits whatever the
    weights (a zero-initialised BatchNorm scale makes a branch's threshold, and so its
    exponent, arbitrarily small). The fake-quantized model and the converter both take their
    exponents from here, so the engine stays bit-exact."""
    flat_p, flat_t = flatten(params), flatten(qstate["weight"])
    out = {}
    for path, bits in plan.wbits.items():
        w = _get(flat_p, path, "kernel")
        log2_t = _get(flat_t, path, "weight threshold")
        n = w.size // (w.shape[-1] if plan.spec.per_channel else 1)
        g = lsq_grad_factor(n, bits, True) if plan.spec.grad_scale else None
        out[path] = scale_exponent(log2_t, bits, True, plan.spec.scale_mode, g)
    if plan.spec.scale_mode != "po2" or not plan.partners:
        return out

    def input_exponent(kernel):
        tap = plan.inputs[kernel]
        return 0.0 if tap is None else act_exponent(plan, qstate, tap)

    def input_bound(kernel):  # |integer input| <= this (pixels minus their mean: 255)
        tap = plan.inputs[kernel]
        return 255.0 if tap is None else float(2 ** plan.abits[tap] - 1)

    floored = dict(out)
    for path, (kind, ref) in plan.partners.items():
        if kind == "tap":
            e_other, bound = act_exponent(plan, qstate, ref), float(2 ** plan.abits[ref] - 1)
        elif kind == "layer":  # its accumulator: sum |q_w| * |x| + |q_b| per channel
            e_other = out[ref] + input_exponent(ref)
            w = flat_p[ref]
            q = quantize_levels(w, out[ref], plan.wbits[ref], True, plan.spec.scale_mode)
            acc = jnp.sum(jnp.abs(q), axis=tuple(range(w.ndim - 1))) * input_bound(ref)
            b = flat_p.get(plan.biases[ref])
            if b is not None:
                acc = acc + jnp.abs(jnp.round(b * pow2(-e_other, plan.spec.scale_mode)))
            bound = jnp.max(acc)
        else:
            e_other, bound = 0.0, 255.0
        # The other branch shifted left by k bits must stay below 2^29 (the sum below 2^30).
        room = 29.0 - jnp.ceil(jnp.log2(jnp.asarray(bound, jnp.float32) + 1.0))
        k = jnp.clip(room, 0.0, float(plan.spec.max_residual_shift))
        floor = jax.lax.stop_gradient(e_other - input_exponent(path) - k)
        floored[path] = jnp.maximum(out[path], floor)
    return floored


def act_exponent(plan: QuantPlan, qstate, tap: str, grad_factor=None):
    """Exponent of tap `tap`'s activations."""
    log2_t = _get(flatten(qstate["act"]), f"{tap}/log2_t", "activation threshold")
    return scale_exponent(log2_t, plan.abits[tap], False, plan.spec.scale_mode, grad_factor)


def quantize_weights_int(graph, params, qstate, qcfg) -> dict:
    """{kernel path: (q, e)}: integer levels (float, STE) and exponent; kernel ~= q * 2^e."""
    plan = make_plan(graph, qcfg)
    flat_p = flatten(params)
    exps = weight_exponents(plan, params, qstate)
    return {path: (quantize_levels(flat_p[path], e, plan.wbits[path], True, plan.spec.scale_mode),
                   e) for path, e in exps.items()}


def quantize_biases_int(graph, params, qstate, qcfg, weight_exps: Optional[dict] = None) -> dict:
    """{bias path: (qb, eb)}: integer bias levels (float, STE) at exponent eb = e_w + e_x."""
    plan = make_plan(graph, qcfg)
    flat_p = flatten(params)
    if weight_exps is None:
        weight_exps = weight_exponents(plan, params, qstate)
    out = {}
    for kpath, bpath in plan.biases.items():
        b = _get(flat_p, bpath, "bias")
        tap = plan.inputs[kpath]
        e_x = 0.0 if tap is None else act_exponent(plan, qstate, tap)
        eb = jax.lax.stop_gradient(weight_exps[kpath] + e_x)
        qb = clip_ste(round_ste(b * pow2(-eb, plan.spec.scale_mode)), -BIAS_LIMIT, BIAS_LIMIT)
        out[bpath] = (qb, eb)
    return out


def default_weight_transform(wq: Mapping, scale_mode: str = "po2") -> dict:
    """{path: (q, e)} -> {path: q * 2^e} (exact for power-of-two scales)."""
    return {path: q * pow2(e, scale_mode) for path, (q, e) in wq.items()}


def quantize_params(graph, params, qstate, qcfg,
                    weight_transform: Optional[Callable] = None):
    """Params with every kernel and bias replaced by its fake-quantized value."""
    plan = make_plan(graph, qcfg)
    wq = quantize_weights_int(graph, params, qstate, plan.spec)
    if weight_transform is None:
        kernels = default_weight_transform(wq, plan.spec.scale_mode)
    else:
        kernels = weight_transform(wq)
        missing = set(wq) - set(kernels)
        if missing:
            raise ValueError(f"weight_transform dropped kernels {sorted(missing)}")
    biases = quantize_biases_int(graph, params, qstate, plan.spec,
                                 {p: e for p, (_, e) in wq.items()})
    flat = dict(flatten(params))
    flat.update(kernels)
    flat.update({p: qb * pow2(eb, plan.spec.scale_mode) for p, (qb, eb) in biases.items()})
    return unflatten(flat)


def act_quantizer(plan: QuantPlan, qstate_act):
    """act(tap, y) for `Graph.apply`: fake-quantizes tap `tap`'s output (unsigned) with its
    threshold from qstate['act']."""
    flat = flatten(qstate_act)

    def act(tap, y):
        bits = plan.abits[tap]
        log2_t = _get(flat, f"{tap}/log2_t", "activation threshold")
        g = lsq_grad_factor(y[0].size, bits, False) if plan.spec.grad_scale else None
        e = scale_exponent(log2_t, bits, False, plan.spec.scale_mode, g)
        return fake_quant(y, e, bits, False, plan.spec.scale_mode)

    return act


def fake_quant_apply(graph, params, qstate, images, qcfg, *,
                     weight_transform: Optional[Callable] = None,
                     crossbar: Optional[Callable] = None, post: Optional[Callable] = None):
    """Logits of the fake-quantized folded `graph` on uint8 `images` (pure, jittable, and
    differentiable w.r.t. params and qstate). `weight_transform`: see module docstring.

    crossbar: optional crossbar(wq, e_x) -> {kernel path: `graph.ops.CrossbarLayer`} (e.g.
    `crimp_jax.periphery.reader.crossbar_reader`), given {path: (q, e)} and the exponent of each
    layer's input: those layers are computed crossbar-faithfully (DACs, ADCs, shift-and-add;
    evaluation only: no gradient is defined through the ADC). post: see `Graph.apply`."""
    plan = make_plan(graph, qcfg)
    qparams = quantize_params(graph, params, qstate, qcfg, weight_transform)
    xbar = None
    if crossbar is not None:
        wq = quantize_weights_int(graph, params, qstate, plan.spec)
        e_x = {k: 0.0 if tap is None else act_exponent(plan, qstate, tap)
               for k, tap in plan.inputs.items()}
        xbar = crossbar(wq, e_x)
    return graph.apply(qparams, images, act=act_quantizer(plan, qstate["act"]), xbar=xbar,
                       post=post)
