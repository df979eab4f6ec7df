"""`Network`: a researcher's Flax module plus what the data says about its input.

The module is an ordinary linen module built from standard layers (see `crimp_jax.graph.ops`)
that maps normalised float images (N, H, W, C) to logits; it never sees quantization, pruning
or variation code. A Flax NNX model (an `nnx.Module` instance, or `nnx.bridge.ToLinen` of its
class) is read through its linen view (`crimp_jax.graph.from_nnx`). `Network` owns the input
convention every stage shares: uint8 images minus the integer channel mean, divided by the
channel std (`normalize`); the deployed network consumes the raw pixels (the std is folded into
the first layers, `graph.fold_params`).

    net = Network(MyNet(num_classes=10), image_shape=(32, 32, 3), mean_int=(125, 123, 114),
                  std=(62.99, 62.09, 66.70))
    variables = net.init(jax.random.key(0))
    logits = net.apply(variables, uint8_images)            # the float (BatchNorm) model
    net.graph                                              # read once from the module

`train_arg` names the module's keyword that switches training mode (BatchNorm batch
statistics, Dropout): 'auto' (the default) finds it in the signature of the module's
`__call__` among `TRAIN_FLAGS` (`deterministic` and `use_running_average` mean the opposite
of training and are passed negated), None when the module takes none; a name says which. In
training mode Dropout draws from the 'dropout' random stream (`apply(..., rng=key)`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crimp_jax.graph.calls import layer_calls
from crimp_jax.graph.from_nnx import from_nnx, is_nnx
from crimp_jax.graph.graph import Graph, build_graph
from crimp_jax.graph.ops import GraphError, module_kind
from crimp_jax.graph.trace import read_ops


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """A Flax module and its input statistics (see module docstring)."""

    module: nn.Module
    image_shape: tuple
    mean_int: tuple
    std: tuple
    name: str = ""
    train_arg: Optional[str] = "auto"

    def __post_init__(self):
        if is_nnx(self.module):  # read through its linen view, whose flag is 'train'
            object.__setattr__(self, "module", from_nnx(self.module, self.train_arg))
            object.__setattr__(self, "train_arg", "auto")
        if isinstance(self.module, type) and issubclass(self.module, (nn.Module, nnx.Module)):
            raise GraphError(f"{self.module.__name__} is a module class; pass an instance of it, "
                             f"{self.module.__name__}(...)")
        if not isinstance(self.module, nn.Module):
            raise GraphError(f"{type(self.module).__name__} is not a Flax module; expected a "
                             f"flax.linen nn.Module or a flax.nnx Module instance mapping "
                             f"images to logits")
        object.__setattr__(self, "train_arg", resolve_train_arg(self.module, self.train_arg))
        shape = tuple(int(d) for d in self.image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GraphError(f"image_shape={self.image_shape!r}: expected (H, W, C)")
        for field in ("mean_int", "std"):
            if len(getattr(self, field)) != shape[-1]:
                raise GraphError(f"{field}={getattr(self, field)!r}: expected one value per "
                                 f"channel ({shape[-1]})")
        if any(not 0 <= int(m) <= 255 or int(m) != m for m in self.mean_int):
            raise GraphError(f"mean_int={self.mean_int!r}: expected integers in 0..255")
        if any(not float(s) > 0 for s in self.std):
            raise GraphError(f"std={self.std!r}: expected positive values")
        object.__setattr__(self, "image_shape", shape)

    def normalize(self, images):
        """uint8 (N, H, W, C) -> float32 (pixel - integer mean) / std."""
        x = images.astype(jnp.float32) - jnp.asarray(self.mean_int, jnp.float32)
        return x / jnp.asarray(self.std, jnp.float32)

    def _kwargs(self, train: bool) -> dict:
        return train_kwargs(self.train_arg, train)

    def init(self, key, images=None):
        """Variables of the module for inputs of `image_shape`."""
        if images is None:
            images = jnp.zeros((1, *self.image_shape), jnp.uint8)
        return self.module.init(key, self.normalize(images), **self._kwargs(False))

    def apply(self, variables, images, train: bool = False, mutable=False, rng=None):
        """Logits (float32) of the float model on uint8 images; with `mutable`, (logits,
        updated collections) as flax returns them. In training mode `rng` (default: a fixed
        key) feeds the 'dropout' stream."""
        x = self.normalize(images)
        kw = self._kwargs(train)
        if train:
            kw["rngs"] = {"dropout": jax.random.key(0) if rng is None else rng}

        def run(v, x):
            return self.module.apply(v, x, mutable=mutable, **kw) if mutable else \
                self.module.apply(v, x, **kw)

        if train:  # BatchNorm(axis_name=...) averages over its named axes: bind each, size 1
            for name in self.axis_names:
                run = _size_one_axis(run, name)
        if mutable:
            logits, upd = run(variables, x)
            return logits.astype(jnp.float32), upd
        return run(variables, x).astype(jnp.float32)

    @functools.cached_property
    def axis_names(self) -> tuple:
        """The named axes the module's BatchNorm layers average batch statistics over
        (`nn.BatchNorm(axis_name=...)`, written for data-parallel training). Training binds
        each as an axis of size one around the call, so the statistics are those of the whole
        batch this process trains on, as with `axis_name=None`."""
        names = []

        def record(call, next_fun):
            a = getattr(call.module, "axis_name", None)
            if module_kind(call.module) == "batchnorm" and a is not None:
                for n in (a if isinstance(a, (tuple, list)) else (a,)):
                    if n not in names:
                        names.append(n)
            return next_fun(*call.args, **call.kwargs)

        with layer_calls(record):
            jax.eval_shape(self.init, jax.random.key(0))
        return tuple(names)

    @property
    def module_name(self) -> str:
        """The class name of the researcher's module (of the NNX model, for an NNX one)."""
        return getattr(self.module, "model_name", type(self.module).__name__)

    def abstract_variables(self):
        return jax.eval_shape(self.init, jax.random.key(0))

    def check_variables(self, variables) -> None:
        """Refuses float variables that are not this network's ({'params', 'batch_stats'} as
        `init` returns them): a missing or unexpected entry, or another shape, by its path."""
        from crimp_jax.utils.paths import flatten
        name = self.name or self.module_name
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise GraphError(f"variables: expected the {{'params': ..., 'batch_stats': ...}} "
                             f"of {name} as its init returns them, got "
                             f"{type(variables).__name__}"
                             f"{' without params' if isinstance(variables, Mapping) else ''}")
        want = {k: tuple(v.shape) for k, v in flatten(self.abstract_variables()).items()}
        got = {k: tuple(np.shape(v)) for k, v in flatten(variables).items()}
        wrong = ([f"{k} is missing (shape {want[k]})" for k in want if k not in got]
                 + [f"{k} is not a variable of {name}" for k in got if k not in want]
                 + [f"{k} has shape {got[k]}, {name}'s is {want[k]}" for k in want
                    if k in got and got[k] != want[k]])
        if wrong:
            more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
            raise GraphError(f"variables: {'; '.join(wrong[:3])}{more}; pass the variables of "
                             f"this module for {self.image_shape} images")

    def in_float32(self) -> "Network":
        """This network computing in float32 (the quantized stage and the graph always do; the
        float stage may run in bfloat16 through a module's `dtype` attribute)."""
        if getattr(self.module, "dtype", jnp.float32) == jnp.float32:
            return self
        return dataclasses.replace(self, module=self.module.clone(dtype=jnp.float32))

    def check_graph(self, images: int = 4, seed: int = 0, rtol: float = 1e-3) -> None:
        """Proves that the read graph, BatchNorm folded, computes the module's function: both
        run on `images` random uint8 images with the module's init variables made generic
        (every constant-initialised parameter, e.g. a BatchNorm scale of 1 or a zero-initialised
        residual scale, and the BatchNorm statistics drawn at random, so no branch is silent).
        A `GraphError` names the first crossbar layer whose output differs by more than `rtol`
        of its scale (then the logits), so a misread layer is refused before anything trains.
        Run op by op, not compiled (measured cheaper for one call: ResNet-56 5 s against 37 s
        for one jitted program, 2-core CPU).
        """
        from crimp_jax.graph.graph import fold_params
        module = self.in_float32().module  # compared in float32, as the graph computes
        key_v, key_x = jax.random.split(jax.random.key(seed))
        variables = _generic_variables(self.init(key_v), seed)
        x = jax.random.randint(key_x, (images, *self.image_shape), 0, 256).astype(jnp.uint8)
        outputs = {}

        def record(call, next_fun):
            y = next_fun(*call.args, **call.kwargs)
            if not isinstance(y, jax.core.Tracer):  # inside nn.remat etc.: the logits decide
                outputs.setdefault(call.path, y)
            return y

        with layer_calls(record):
            logits = module.apply(variables, self.normalize(x), **self._kwargs(False))
        g = self.graph
        values = g.values(fold_params(g, variables["params"], variables.get("batch_stats")), x)
        checks = [(outputs.get(op.get("bn") or op["name"]), values.get(op["out"]), op["name"])
                  for op in g.layers]
        for want, got, what in checks + [(logits, values[g.output], "the logits")]:
            if want is None or got is None:
                continue
            want = jnp.asarray(want, jnp.float32)
            scale = float(jnp.max(jnp.abs(want)))
            if want.size != got.size:  # another shape: another function
                diff = float("inf")
            else:
                diff = float(jnp.max(jnp.abs(got - want.reshape(got.shape))))
            if not diff <= rtol * scale + 1e-5:
                half = [(path, y.dtype) for path, y in outputs.items()
                        if getattr(y, "dtype", None) in (jnp.bfloat16, jnp.float16)]
                why = (f", and layer {half[0][0]!r} computes in {half[0][1]} (its dtype "
                       f"argument) while the graph and the second stage compute in float32; "
                       f"build the layers in float32, or give the module a `dtype` attribute "
                       f"its layers take (crimp_jax then reads it with dtype=float32, as the "
                       f"flax examples' ResNet(dtype=jnp.bfloat16))" if half else
                       f"; the module at {what!r} or before it does something the graph does "
                       f"not read (a custom layer, a transform inside __call__); replace it "
                       f"with standard layers")
                raise GraphError(
                    f"the graph read from {self.name or self.module_name} does not "
                    f"compute the module's function: {what} differs by up to {diff:.3g} (its "
                    f"outputs reach {scale:.3g}) on random inputs{why}")

    @functools.cached_property
    def graph(self) -> Graph:
        """The deployable graph, read once from the module (`crimp_jax.graph.trace`)."""
        x = jax.ShapeDtypeStruct((2, *self.image_shape), jnp.float32)
        ops, out = read_ops(self.module, self.abstract_variables(), x, self._kwargs(False))
        return build_graph(ops, out, self.image_shape, self.mean_int, self.std,
                           self.module_name)


def _generic_variables(variables, seed: int):
    """`variables` with every constant leaf of 'params' (e.g. BatchNorm scales of 1, biases of
    0, zero-initialised scales) moved by U(-0.5, 0.5) per element, and BatchNorm statistics
    drawn at random (means N(0, 0.2), variances U(0.5, 2)): no layer is an identity or
    silent, as at init. (NumPy, on the host: a few hundred ms for VGG-16.)"""
    rng = np.random.default_rng(seed)
    leaves, tree = jax.tree_util.tree_flatten_with_path(variables)
    out = []
    for path, leaf in leaves:
        names = [str(getattr(p, "key", p)) for p in path]
        a = np.asarray(leaf)
        if names[0] == "batch_stats" and names[-1] == "mean":
            a = 0.2 * rng.standard_normal(a.shape)
        elif names[0] == "batch_stats" and names[-1] == "var":
            a = rng.uniform(0.5, 2.0, a.shape)
        elif names[0] == "params" and a.size and np.all(a == a.reshape(-1)[0]):
            a = a + rng.uniform(-0.5, 0.5, a.shape)
        out.append(jnp.asarray(a, np.asarray(leaf).dtype))
    return jax.tree_util.tree_unflatten(tree, out)


# Keyword names of a module's train flag, in the order they are looked for; the negated ones
# are True in evaluation.
TRAIN_FLAGS = ("train", "training", "is_training", "deterministic", "use_running_average",
               "update_batch_norm")
NEGATED_FLAGS = ("deterministic", "use_running_average")


def train_kwargs(flag, train: bool) -> dict:
    """{flag: value} switching a module's training mode (negated for `NEGATED_FLAGS`); {} for
    a module without a flag (None)."""
    if flag is None:
        return {}
    return {flag: (not train) if flag in NEGATED_FLAGS else train}


def resolve_train_arg(module, train_arg):
    """The keyword of `module.__call__` that switches training mode: `train_arg` checked
    against the signature, or with 'auto' the one of `TRAIN_FLAGS` it takes (None if none);
    a `GraphError` names the flags when there are several or the given one is not taken."""
    try:
        params = list(inspect.signature(type(module).__call__).parameters.values())[1:]
    except (TypeError, ValueError):
        return None if train_arg == "auto" else train_arg
    names = [p.name for p in params[1:]]  # after the input
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    what = type(module).__name__
    if train_arg == "auto":
        found = [n for n in TRAIN_FLAGS if n in names]
        if len(found) > 1:
            raise GraphError(f"{what}.__call__ takes several train flags ({', '.join(found)}); "
                             f"say which switches training: cj.run(..., train_arg=NAME) or "
                             f"--config.model.train_arg=NAME (None: no flag)")
        return found[0] if found else None
    if train_arg is not None and train_arg not in names and not takes_any:
        raise GraphError(f"model.train_arg={train_arg!r}: {what}.__call__ takes no such "
                         f"argument (it takes {', '.join(names) or 'only its input'}); use one "
                         f"of those, 'auto' or None")
    return train_arg


def _size_one_axis(fn, name):
    """`fn` run with the named axis `name` bound, of size one (outputs unchanged)."""
    def bound(*args):
        out = jax.vmap(fn, in_axes=None, axis_name=name, axis_size=1)(*args)
        return jax.tree.map(lambda a: a[0], out)
    return bound
