"""Reads the op graph of a Flax model by running it once, abstractly (`jax.make_jaxpr`).

While the model runs, a layer hook (`crimp_jax.graph.calls.layer_calls`: linen's method
interceptor, and NNX layers' wrapped `__call__`) marks every call of a module a registered op is
read from (`nn.Conv`/`nnx.Conv`, `nn.Dense`/`nnx.Linear`, `nn.BatchNorm`/`nnx.BatchNorm`:
`ops.OpDef.modules`) with a marker primitive
`crimp_module(x, y)` that links the module's input to its output, records the module's
attributes, and refuses unsupported flax modules (`nn.LayerNorm`, ...) by path. The traced
program is then flattened (jit and custom-derivative calls inlined) and walked backward from
the output to the input, through markers only along their input, so module internals are never
read; the ops on that path are read forward by the registry (`ops.OpDef.primitives`), with
constant operands folded. Whatever no op reads is refused with the module path (the flax name
scope) and the primitive. Everything happens at trace time: nothing is compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.extend.core import Literal, Primitive

from crimp_jax.graph import ops as gops
from crimp_jax.graph.calls import layer_calls
from crimp_jax.graph.ops import GraphError

# flax modules that are fine to meet: containers and eval-mode identities.
ALLOWED_MODULES = (nn.Sequential, nn.Dropout, nnx.Sequential, nnx.Dropout)
_ALIASES = ("convert_element_type", "copy", "copy_p", "optimization_barrier")
_SUBJAXPR_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")

# What a refused primitive usually is in a model's own terms, and the nearest supported layer.
PRIMITIVE_HINTS = {
    "logistic": "a sigmoid, e.g. nn.swish / nn.silu / nn.sigmoid; use nn.relu",
    "tanh": "tanh; use nn.relu",
    "erf": "GELU; use nn.relu",
    "exp": "an exponential (GELU, ELU, softmax); use nn.relu, and return logits",
    "rsqrt": "a normalisation computed inside the model (LayerNorm, GroupNorm, RMSNorm or a "
             "BatchNorm class of the model's own); use nn.BatchNorm right after its Conv",
    "sqrt": "a normalisation computed inside the model; use nn.BatchNorm right after its Conv",
    "sub": "a subtraction from an activation, e.g. input normalisation inside the model; pass "
           "the module normalised images (crimp_jax subtracts the data's integer mean and "
           "divides by its std before the module)",
    "div": "a division, e.g. nn.avg_pool(..., count_include_pad=False), which divides border "
           "windows by fewer; use count_include_pad=True (the default), or in-model "
           "normalisation, which crimp_jax does before the module",
    "mul": "a product with an activation or a per-channel constant (a gate, attention, a "
           "custom scale); fold constants into the layer's kernel",
    "dot_general": "a matrix product outside nn.Dense (e.g. attention or einsum); use nn.Dense",
    "reduce_max": "a max over axes: global max pooling (use nn.max_pool windows or a mean) "
                  "or a softmax / log_softmax at the end (return the logits: the loss applies "
                  "the softmax)",
    "ge": "a comparison of activations (leaky_relu, ELU, a hard threshold); use nn.relu",
    "gt": "a comparison of activations (leaky_relu, ELU, a hard threshold); use nn.relu",
    "select_n": "a choice between activations (leaky_relu, ELU, jnp.where); use nn.relu",
    "min": "an upper clip of activations (relu6, hard_tanh, jnp.clip); use nn.relu",
    "log": "a logarithm (log_softmax at the end); return the logits",
}

_marker = Primitive("crimp_module")
_marker.def_impl(lambda x, y, **kw: y)
_marker.def_abstract_eval(lambda x, y, **kw: y)


@dataclasses.dataclass
class Eqn:
    """One flattened equation: primitive name, operands (('v', id) | ('c', value)), output
    ids, the output shape, params and the flax name scope it ran in."""

    primitive: str
    bind: Any
    ins: list
    outs: list
    outvars_shape: tuple
    params: dict
    scope: str


@dataclasses.dataclass(frozen=True)
class G:
    """A graph value: its name and shape."""

    name: str
    shape: tuple


class _Param:
    """A model parameter used outside a registered module."""


def _qualname(cls) -> str:
    """'nn.Conv' / 'nnx.Conv' for a flax layer class, else its name."""
    mod = cls.__module__
    prefix = "nnx." if mod.startswith("flax.nnx") else "nn." if mod.startswith("flax.") else ""
    return prefix + cls.__name__


def _record_modules(records):
    def hook(call, next_fun):
        mod, path = call.module, call.path
        kind = gops.module_kind(mod)
        if call.nnx and path is None:
            raise GraphError(f"an {_qualname(type(mod))} layer ran outside the NNX model "
                             f"crimp_jax reads (one the model creates while it runs?): create "
                             f"every layer in the model's __init__")
        if isinstance(mod, nnx.bridge.ToLinen):
            raise GraphError(f"module {path or '<root>'!r} is an NNX model inside a linen "
                             f"module (nnx.bridge.ToLinen): crimp_jax reads a model written "
                             f"in one of linen and NNX; pass the NNX model itself, or write "
                             f"the whole model in linen")
        if kind is None:
            cls = type(mod)
            if cls.__module__.startswith("flax.") and not isinstance(mod, ALLOWED_MODULES):
                supported = ", ".join(_qualname(c) for d in gops.REGISTRY.values()
                                      for c in d.modules)
                raise GraphError(f"module {path or '<root>'!r} is a flax {_qualname(cls)}, "
                                 f"which the crossbar graph does not support; supported "
                                 f"modules: {supported} (plus nn.Sequential, nnx.Sequential, "
                                 f"and Dropout, the identity in evaluation)")
            return next_fun(*call.args, **call.kwargs)
        base = next(c for c in gops.REGISTRY[kind].modules if isinstance(mod, c))
        if _own_call(type(mod)) is not _own_call(base):
            raise GraphError(
                f"module {path or '<root>'!r} is a {type(mod).__name__}, a subclass of "
                f"{_qualname(base)} that overrides __call__ (e.g. a weight standardisation): "
                f"the crossbar graph would read it as a plain {_qualname(base)} and compute "
                f"another function; use {_qualname(base)} itself, or apply the transform to "
                f"the kernel outside the module")
        if path in records:
            raise GraphError(f"module {path!r} is called twice: shared weights are not "
                             "supported (each crossbar layer is one module call)")
        x = call.args[0]
        records[path] = (kind, gops.REGISTRY[kind].read_module(mod, tuple(x.shape), path))
        y = next_fun(*call.args, **call.kwargs)
        return _marker.bind(x, y, kind=kind, path=path)

    return hook


def _own_call(cls):
    """The `__call__` class `cls` runs (unwrapped while `layer_calls` wraps NNX layers)."""
    f = cls.__call__
    return getattr(f, "__crimp_original__", f)


def _flatten_jaxpr(jaxpr, env, scope, out, counter):
    """Appends the eqns of `jaxpr` to `out` with sub-jaxprs inlined; env maps Var -> atom."""

    def atom(v):
        return ("c", np.asarray(v.val)) if isinstance(v, Literal) else env[v]

    for eqn in jaxpr.eqns:
        ins = [atom(v) for v in eqn.invars]
        sc = scope if scope is not None else str(eqn.source_info.name_stack)
        sub = next((eqn.params[k] for k in _SUBJAXPR_PARAMS if k in eqn.params), None)
        if sub is not None and eqn.primitive.name != "crimp_module":
            inner = getattr(sub, "jaxpr", sub)
            ienv = {v: ("c", np.asarray(c)) for v, c in zip(inner.constvars,
                                                             getattr(sub, "consts", ()))}
            ienv.update(zip(inner.invars, ins))
            _flatten_jaxpr(inner, ienv, sc, out, counter)
            for o, io in zip(eqn.outvars, inner.outvars):
                env[o] = ("c", np.asarray(io.val)) if isinstance(io, Literal) else ienv[io]
            continue
        outs = []
        for o in eqn.outvars:
            counter[0] += 1
            env[o] = ("v", counter[0])
            outs.append(counter[0])
        shape = tuple(eqn.outvars[0].aval.shape) if eqn.outvars else ()
        out.append(Eqn(eqn.primitive.name, eqn.primitive, ins, outs, shape, dict(eqn.params),
                       sc))


class Reader:
    """Reads live equations into graph ops (the `rd` argument of `OpDef.read`)."""

    def __init__(self):
        self.ops = []
        self._producer = {}
        self._shape = {}
        self._counts = {}

    def scope(self, eqn) -> str:
        parts = eqn.scope.split("/") if eqn.scope else []
        # The first component is the root module; 'Net.method' frames are method calls.
        return "/".join(p for p in parts[1:] if "." not in p)

    def error(self, eqn, msg) -> GraphError:
        where = self.scope(eqn) or "<root>"
        hint = PRIMITIVE_HINTS.get(eqn.primitive)
        return GraphError(f"module {where!r}: {msg} (jax primitive {eqn.primitive!r}"
                          f"{': ' + hint if hint else ''}); the crossbar graph supports: "
                          f"{', '.join(k for k in gops.REGISTRY)}")

    def add(self, op: dict, shape) -> G:
        if op["out"] in self._shape:
            raise GraphError(f"two ops named {op['out']!r}")
        self.ops.append(op)
        self._producer[op["out"]] = op
        self._shape[op["out"]] = tuple(shape)
        return G(op["out"], tuple(shape))

    def emit(self, kind, ins, eqn, label: Optional[str] = None, **attrs) -> G:
        """Appends op `kind` reading graph values `ins`; named '<scope>/<label><k>'."""
        scope, label = self.scope(eqn), label or kind
        k = self._counts.get((scope, label), 0)
        self._counts[(scope, label)] = k + 1
        name = f"{scope}/{label}{k}" if scope else f"{label}{k}"
        op = {"op": kind, "name": name, "in": [g.name for g in ins], "out": name, **attrs}
        return self.add(op, eqn.outvars_shape)

    def producer(self, g):
        """The op that computed graph value `g` (a G or its name); None for the input."""
        op = self._producer.get(g if isinstance(g, str) else g.name)
        return None if op is None or op["op"] == "input" else op

    def shape_of(self, name: str) -> tuple:
        return self._shape[name]

    def graph_args(self, args, eqn, n: int = 1) -> list:
        gs = [a for a in args if isinstance(a, G)]
        if len(gs) != len(args) or len(gs) != n:
            raise self.error(eqn, f"an op on {len(gs)} activation(s) and "
                                  f"{len(args) - len(gs)} constant(s) or parameter(s)")
        return gs

    def split(self, args, eqn, what):
        """(graph value, constant, its index) of a binary op on one activation and one
        constant."""
        idx = [i for i, a in enumerate(args) if isinstance(a, G)]
        if len(args) != 2 or len(idx) != 1 or isinstance(args[1 - idx[0]], _Param):
            raise self.error(eqn, f"{what} must combine one activation with one constant")
        return args[idx[0]], args[1 - idx[0]], idx[0]


def read_ops(module, variables, x, call_kwargs=None) -> tuple[list, str]:
    """(ops, output name) of `module.apply(variables, x, **call_kwargs)` (see module docstring).

    `variables` and `x` may be abstract (jax.ShapeDtypeStruct); the first op is 'input'."""
    records = {}
    call_kwargs = dict(call_kwargs or {})

    def fwd(v, images):
        return module.apply(v, images, **call_kwargs)

    with layer_calls(_record_modules(records)):
        closed, returned = jax.make_jaxpr(fwd, return_shape=True)(variables, x)
    jaxpr = closed.jaxpr
    n_var = len(jax.tree.leaves(variables))
    if len(jaxpr.outvars) != 1:
        raise GraphError(f"the model returns {len(jaxpr.outvars)} arrays; expected one "
                         "array of logits")
    if not isinstance(returned, jax.ShapeDtypeStruct):
        raise GraphError(f"the model returns a {type(returned).__name__} holding one array; "
                         f"expected the array of logits itself: return it")
    env = {v: ("c", np.asarray(c)) for v, c in zip(jaxpr.constvars, closed.consts)}
    for i, v in enumerate(jaxpr.invars):
        env[v] = ("v", -1 - i)
    eqns = []
    _flatten_jaxpr(jaxpr, env, None, eqns, [0])
    out_atom = env[jaxpr.outvars[0]] if not isinstance(jaxpr.outvars[0], Literal) else None
    x_id = -1 - n_var

    # Liveness: backward from the output; a marker is followed only along its input.
    producer = {o: i for i, e in enumerate(eqns) for o in e.outs}
    live, stack = set(), [out_atom]
    while stack:
        a = stack.pop()
        if a is None or a[0] != "v" or a[1] not in producer:
            continue
        i = producer[a[1]]
        if i in live:
            continue
        live.add(i)
        e = eqns[i]
        stack.extend(e.ins[:1] if e.primitive == "crimp_module" else e.ins)

    rd = Reader()
    state = {x_id: rd.add({"op": "input", "name": "input", "in": [], "out": "input"}, x.shape)}
    for i in range(n_var):
        state[-1 - i] = _Param()

    def value(a):
        return a[1] if a[0] == "c" else state[a[1]]

    for i in sorted(live):
        e = eqns[i]
        args = [value(a) for a in (e.ins[:1] if e.primitive == "crimp_module" else e.ins)]
        if e.primitive == "crimp_module":
            kind, path = e.params["kind"], e.params["path"]
            if not isinstance(args[0], G):
                raise GraphError(f"module {path!r} does not read an activation of the input")
            attrs = dict(records[path][1])
            op = {"op": kind, "name": path, "in": [args[0].name], "out": path, **attrs}
            if gops.REGISTRY[kind].crossbar:
                op.update(kernel=f"{path}/kernel", bias=f"{path}/bias")
            out = rd.add(op, e.outvars_shape)
        elif not any(isinstance(a, (G, _Param)) for a in args):  # constant folding
            vals = e.bind.bind(*[jnp.asarray(a) for a in args], **e.params)
            out = np.asarray(vals[0] if e.bind.multiple_results else vals)
        elif e.primitive in _ALIASES and isinstance(args[0], G):
            dtype = e.params.get("new_dtype")
            if dtype is not None and not jnp.issubdtype(dtype, jnp.floating):
                raise rd.error(e, f"a cast of an activation to {dtype}")
            out = args[0]
        elif e.primitive in gops.primitive_kinds():
            kind = gops.primitive_kinds()[e.primitive]
            out = gops.REGISTRY[kind].read(e, args, rd)
        else:
            if any(isinstance(a, _Param) for a in args):
                raise rd.error(e, "a model parameter used outside nn.Conv, nn.Dense and "
                                  "nn.BatchNorm")
            raise rd.error(e, "an op the crossbar graph does not support")
        if len(e.outs) != 1:
            raise rd.error(e, "an op with several outputs")
        state[e.outs[0]] = out
    result = value(out_atom) if out_atom is not None else None
    if not isinstance(result, G):
        raise GraphError("the model's output does not depend on its input")
    return rd.ops, result.name
