"""The deployable graph of a network: ops read from the model, BatchNorm folded, activation
quantization points inserted; its float forward; BatchNorm folding of parameters.

`build_graph(ops, output, ...)` turns the ops `trace.read_ops` read into the graph every stage
shares (the quantizer, the integer converter and engine, Monte Carlo and the cost model):

1. Every BatchNorm must follow a Conv or Dense whose only consumer it is; it is folded into that
   layer (the layer op keeps the BN path in `bn`) and leaves the graph.
2. A `requant` op (an activation quantization point, `tap`) follows every ReLU, and one is
   inserted before every crossbar layer whose input is not already on a quantization grid (the
   pixels, or a ReLU output through max pooling, flattening, subsampling or zero padding), e.g.
   after a global average pool. Taps are unsigned: a tap whose value may be negative is refused.
   A tap is named after the op it quantizes (e.g. 's0b0/relu1', 'mean0').

Values are named by strings; each op reads `in` (a list) and writes `out`. The first op is
`input` (uint8 pixels minus the integer channel mean `mean`, in the model's `shape`), whose
division by the channel `std` is folded into the first layers' kernels (`fold_params`).

The folded parameters are {layer path: {'kernel', 'bias'}}, one entry per crossbar layer; the
kernel keeps its shape and path, so every crossbar transform applies unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Optional

import jax.numpy as jnp

from crimp_jax.graph import ops as gops
from crimp_jax.graph.ops import GraphError
from crimp_jax.utils.paths import flatten, unflatten

# Ops through which a value stays on its input's grid and channel (for input-std folding).
_STD_THROUGH = ("flatten",)


@dataclasses.dataclass(frozen=True, eq=False)
class FloatContext:
    images: object
    params: dict  # flat {path: array}
    act: Optional[Callable]
    xbar: Optional[dict] = None  # {kernel path: ops.CrossbarLayer}: read through the periphery

    def crossbar(self, op):
        """The layer's `CrossbarLayer` when it is read crossbar-faithfully, else None."""
        return None if self.xbar is None else self.xbar.get(op["kernel"])

    def param(self, path):
        if path not in self.params:
            raise ValueError(f"parameter {path!r} not found; available: "
                             f"{', '.join(sorted(self.params))}")
        return self.params[path]


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """The graph (hashable by identity: a static argument of jitted functions)."""

    ops: tuple  # of JSON-able dicts, in execution order
    output: str
    input_shape: tuple  # (H, W, C)
    model_type: str = ""

    @functools.cached_property
    def layers(self) -> list:
        """The crossbar layer ops (conv, dense) in execution order."""
        return [op for op in self.ops if gops.opdef(op["op"]).crossbar]

    @property
    def kernels(self) -> list:
        return [op["kernel"] for op in self.layers]

    @property
    def taps(self) -> list:
        """Activation quantization points in execution order."""
        return [op["tap"] for op in self.ops if op["op"] == "requant"]

    @property
    def input_op(self) -> dict:
        return self.ops[0]

    @functools.cached_property
    def _by_out(self) -> dict:
        return {op["out"]: op for op in self.ops}

    def producer(self, name: str) -> dict:
        return self._by_out[name]

    def input_taps(self) -> dict:
        """{kernel path: tap feeding the layer, or None for the pixels}, through ops that keep
        the grid (max pooling, flatten, ...)."""
        out = {}
        for op in self.layers:
            src = self.producer(op["in"][0])
            while src["op"] not in ("requant", "input"):
                src = self.producer(src["in"][0])
            out[op["kernel"]] = src["tap"] if src["op"] == "requant" else None
        return out

    def pixel_layers(self) -> dict:
        """{layer path: flattened spatial size (1 for a conv)} of the layers reading the
        pixels directly (their kernels absorb the input std)."""
        out = {}
        for op in self.layers:
            src = self.producer(op["in"][0])
            while src["op"] in _STD_THROUGH:
                src = self.producer(src["in"][0])
            if src["op"] == "input":
                h, w, _ = self.input_shape
                out[op["name"]] = h * w if op["op"] == "dense" else 1
        return out

    @property
    def num_classes(self) -> int:
        return int(self.layers[-1]["features"])

    def apply(self, params, images, act: Optional[Callable] = None, xbar: Optional[dict] = None,
              post: Optional[Callable] = None):
        """float32 logits of the folded network on uint8 `images`; `act(tap, y)` is called at
        every quantization point (identity when None); the layers in `xbar` ({kernel path:
        `ops.CrossbarLayer`}) are computed crossbar-faithfully (DACs, ADCs, shift-and-add);
        `post(op, y)` replaces each crossbar layer's output y (training only: the BatchNorm
        correction of `crimp_jax.train.bn_correction`)."""
        return self.values(params, images, act, xbar, post)[self.output].astype(jnp.float32)

    def values(self, params, images, act: Optional[Callable] = None,
               xbar: Optional[dict] = None, post: Optional[Callable] = None) -> dict:
        """{value name: array} of every op's output (see `apply`)."""
        fx = FloatContext(images, dict(flatten(params)), act or (lambda tap, y: y), xbar)
        env = {}
        for op in self.ops:
            d = gops.opdef(op["op"])
            y = d.apply(op, [env[i] for i in op["in"]], fx)
            env[op["out"]] = post(op, y) if post is not None and d.crossbar else y
        return env

    def integer_obstacles(self) -> list:
        """Why the integer engine cannot run this graph (power-of-two scales assumed): one line
        per scale op whose divisor is not a power of two, e.g. a global average pool over 7x7."""
        out = []
        for op in self.ops:
            if op["op"] == "scale":
                k = math.log2(op["divisor"])
                if k != round(k):
                    out.append(f"{op['name']} divides by {op['divisor']:g}, not a power of two")
        return out

    def describe(self) -> str:
        """One line per op: kind, name, inputs; then one line per integer-engine obstacle
        (`integer_obstacles`), which a run with `evaluate.engine=True` refuses before
        training."""
        lines = [f"{op['op']:9s} {op['name']:28s} <- {', '.join(op['in'])}" for op in self.ops]
        lines += [f"integer engine: {o} (set evaluate.engine=False, or change the input size "
                  f"or the pooling)" for o in self.integer_obstacles()]
        return "\n".join(lines)


def _consumers(ops) -> dict:
    out = {}
    for op in ops:
        for i in op["in"]:
            out.setdefault(i, []).append(op)
    return out


def _rename_inputs(ops, old: str, new: str):
    for op in ops:
        op["in"] = [new if i == old else i for i in op["in"]]


def _fold_bn(ops) -> list:
    ops = [dict(op) for op in ops]
    by_out = {op["out"]: op for op in ops}
    for bn in [op for op in ops if op["op"] == "batchnorm"]:
        src = by_out[bn["in"][0]]
        users = _consumers(ops)[src["out"]]
        if not gops.opdef(src["op"]).crossbar or src.get("bn") or len(users) != 1:
            if gops.opdef(src["op"]).crossbar and len(users) != 1:
                others = ", ".join(repr(u["name"]) for u in users if u is not bn)
                why = (f"{src['op']} {src['name']!r} also feeds {others} (e.g. a pre-activation "
                       f"block, whose shortcut reads the conv before its BatchNorm)")
            else:
                why = (f"it reads {src['op']} {src['name']!r}, not a Conv or Dense (e.g. a "
                       f"pre-activation block's BatchNorm after an add, or a BatchNorm on the "
                       f"input)")
            raise GraphError(f"nn.BatchNorm {bn['name']!r} cannot be folded: {why}; only a "
                             "BatchNorm that is the only reader of its Conv or Dense folds into "
                             "the crossbar layer: use post-activation blocks (conv -> BN -> "
                             "ReLU, the add after the BN)")
        src.update(bn=bn["name"], bn_epsilon=bn["epsilon"], bn_scale=bn["use_scale"],
                   bn_bias=bn["use_bias"])
        ops.remove(bn)
        _rename_inputs(ops, bn["out"], src["out"])
    return ops


def _nonneg(ops) -> dict:
    out = {}
    for op in ops:
        rule = gops.opdef(op["op"]).nonneg
        out[op["out"]] = (rule == "always" or
                          rule == "inputs" and all(out[i] for i in op["in"]))
    return out  # (a scale's divisor is positive: the reader refuses any other)


def _insert_requants(ops) -> list:
    out, on_grid, renamed = [], {}, {}
    nonneg = _nonneg(ops)

    def requant(value, label):
        if not nonneg[value]:
            raise GraphError(f"{label}: the activation {value!r} may be negative, but "
                             "activation quantization is unsigned; put a ReLU before it")
        op = {"op": "requant", "name": f"{value}/q", "tap": value, "in": [value],
              "out": f"{value}/q"}
        out.append(op)
        on_grid[op["out"]] = True
        renamed[value] = op["out"]
        return op["out"]

    for op in ops:
        op = dict(op, **{"in": [renamed.get(i, i) for i in op["in"]]})
        d = gops.opdef(op["op"])
        if d.crossbar:
            src = op["in"][0]
            if not on_grid[src]:
                op["in"] = [renamed.get(src) or requant(src, f"layer {op['name']!r}")]
        out.append(op)
        on_grid[op["out"]] = (op["op"] == "input" or
                              d.keeps_grid and all(on_grid[i] for i in op["in"]))
        if op["op"] == "relu":
            requant(op["out"], f"ReLU {op['name']!r}")
    return out


def build_graph(ops, output: str, input_shape, mean_int, std, model_type: str = "") -> Graph:
    """The deployable graph of the ops `trace.read_ops` returned (see module docstring)."""
    ops = _fold_bn(ops)
    ops = _insert_requants(ops)
    if len(mean_int) != input_shape[-1] or len(std) != input_shape[-1]:
        raise GraphError(f"channel statistics of {len(mean_int)}/{len(std)} channels for "
                         f"{input_shape[-1]}-channel images")
    ops[0] = dict(ops[0], mean=[int(m) for m in mean_int], std=[float(s) for s in std],
                  shape=[int(d) for d in input_shape])
    final = ops[-1]["out"] if ops[-1]["op"] == "requant" and ops[-1]["tap"] == output else output
    if not any(gops.opdef(op["op"]).crossbar for op in ops):
        raise GraphError("the model has no nn.Conv or nn.Dense layer")
    g = Graph(tuple(ops), final, tuple(int(d) for d in input_shape), model_type)
    pix = g.pixel_layers()
    for op in g.layers:  # every first layer must read the pixels through std-foldable ops
        src = g.producer(op["in"][0])
        while src["op"] in ("maxpool", "subsample", "pad"):
            src = g.producer(src["in"][0])
        if src["op"] == "input" and op["name"] not in pix:
            raise GraphError(f"layer {op['name']!r} reads the pixels through "
                             f"{g.producer(op['in'][0])['op']}: the input std can only be folded "
                             "into a layer reading them directly (or flattened)")
    return g


def fold_params(graph: Graph, params, batch_stats=None) -> dict:
    """BatchNorm-model params (+ batch_stats, or BN statistics {bn path: {mean, var}}) ->
    folded {layer: {kernel, bias}}:

        kernel' = kernel * gamma / sqrt(var + eps)            (per output channel)
        bias'   = beta - mean * gamma / sqrt(var + eps)       (+ bias * gamma / sqrt(...))

    and the kernels of the layers reading the pixels divided by the per-channel input std."""
    flat_p = flatten(params)
    flat_s = flatten(batch_stats or {})
    std = jnp.asarray(graph.input_op["std"], jnp.float32)
    pix = graph.pixel_layers()
    out = {}
    for op in graph.layers:
        name = op["name"]
        kernel = flat_p[f"{name}/kernel"]
        bias = flat_p.get(f"{name}/bias")
        if op.get("bn"):
            bn = op["bn"]
            gamma = flat_p[f"{bn}/scale"] if op["bn_scale"] else 1.0
            beta = flat_p[f"{bn}/bias"] if op["bn_bias"] else 0.0
            inv = gamma / jnp.sqrt(flat_s[f"{bn}/var"] + op["bn_epsilon"])
            kernel = kernel * inv
            b = beta - flat_s[f"{bn}/mean"] * inv
            bias = b if bias is None else b + bias * inv
        elif bias is None:
            bias = jnp.zeros(kernel.shape[-1], kernel.dtype)
        if name in pix:
            s = std if op["op"] == "conv" else jnp.tile(std, pix[name])
            kernel = kernel / (s[None, None, :, None] if op["op"] == "conv" else s[:, None])
        out[f"{name}/kernel"] = kernel
        out[f"{name}/bias"] = bias
    return unflatten(out)
