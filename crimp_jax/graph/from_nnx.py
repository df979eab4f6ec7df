"""A Flax NNX model seen as a linen module, so every stage reads it like any other.

    model = CNN(rngs=nnx.Rngs(0))                 # an nnx.Module, as the Flax examples write it
    net = cj.network(model, splits)               # wrapped here; the graph reads its nnx layers

`FromNNX(model)` is a linen module whose variables are the NNX model's state in linen's
layout: every `nnx.Param` under 'params' and every `nnx.BatchStat` under 'batch_stats', nested
by attribute path (`{'params': {'conv1': {'kernel', 'bias'}}}`; list indices as strings), the
names nnx.Conv, nnx.Linear and nnx.BatchNorm share with nn.Conv, nn.Dense and nn.BatchNorm.
Each call runs a private clone of the model (the model passed in is never changed) with those
variables, in training mode (`model.train()`: BatchNorm batch statistics, Dropout on) or
evaluation mode (`model.eval()`), passing the model's own train flag when its `__call__` takes
one (`train_arg`, resolved like a linen module's) and `rngs=` when it takes `rngs` (the MNIST
example's `__call__(self, x, rngs)`). In training mode Dropout draws from linen's 'dropout'
stream: every RNG stream the model holds is reseeded from it per call. Updated BatchNorm
statistics are written back when 'batch_stats' is mutable.

`init` returns the model's own state as constructed (its `nnx.Rngs` decided it; `model.seed`
does not re-draw it), except for a model given as `nnx.bridge.ToLinen(Class, args, kwargs)`,
which is built from the init key like any linen module. Variables of other types (a custom
`nnx.Variable` subclass) are refused by path: they would not be trained or deployed.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
from flax import nnx
from flax.core import unfreeze

from crimp_jax.graph.calls import nnx_paths
from crimp_jax.graph.ops import GraphError

COLLECTIONS = (("params", nnx.Param), ("batch_stats", nnx.BatchStat))


def is_nnx(module) -> bool:
    """Whether `module` is an NNX model (an instance) or flax's bridge of an NNX class."""
    return isinstance(module, (nnx.Module, nnx.bridge.ToLinen))


def from_nnx(module, train_arg="auto") -> "FromNNX":
    """The linen view of NNX model `module` (an `nnx.Module` instance, or an
    `nnx.bridge.ToLinen`); `train_arg` names the model's train flag ('auto': found in its
    `__call__`'s signature, None: it has none)."""
    from crimp_jax.graph.network import resolve_train_arg

    factory = None
    if isinstance(module, nnx.bridge.ToLinen):
        factory = functools.partial(module.nnx_class, *module.args, **dict(module.kwargs))
        if not module.skip_rng:
            factory = functools.partial(_with_rngs, factory)
        module = factory(jax.random.key(0))
    else:
        module = nnx.clone(module)  # the caller may go on changing theirs
    _check_variables(module)
    flag = resolve_train_arg(module, train_arg)
    return FromNNX(module, flag, _takes_rngs(module), factory)


def _with_rngs(factory, key):
    return factory(rngs=nnx.Rngs(key))


def _takes_rngs(module) -> bool:
    try:
        return "rngs" in inspect.signature(type(module).__call__).parameters
    except (TypeError, ValueError):
        return False


def _check_variables(module) -> None:
    kinds = tuple(t for _, t in COLLECTIONS) + (nnx.RngState,)
    for path, leaf in nnx.to_flat_state(nnx.state(module)):
        if not isinstance(leaf, kinds):
            where = "/".join(str(p) for p in path)
            raise GraphError(
                f"{type(module).__name__}: variable {where!r} is a {type(leaf).__name__}; "
                f"crimp_jax trains and deploys nnx.Param and nnx.BatchStat variables (and "
                f"leaves RNG streams to Dropout): make it an nnx.Param, or a constant")


def _linen_layout(tree):
    """A pure nested dict with string keys (linen's collections), from an NNX state."""
    if isinstance(tree, dict):
        return {str(k): _linen_layout(v) for k, v in tree.items()}
    return tree


def _nnx_layout(template, tree):
    """`tree` (string keys) with the keys of `template` (an NNX pure dict: list indices are
    ints)."""
    if not isinstance(template, dict):
        return tree
    return {k: _nnx_layout(v, tree[str(k)]) for k, v in template.items() if str(k) in tree}


class FromNNX(nn.Module):
    """The linen view of an NNX model (see module docstring). `model`: the NNX model (a
    template, never changed); `train_arg`: its train flag (None: none); `takes_rngs`: whether
    its `__call__` takes `rngs`; `factory`: key -> a fresh model (a ToLinen's class), or None."""

    model: Any
    train_arg: Optional[str] = None
    takes_rngs: bool = False
    factory: Optional[Callable] = None

    @property
    def model_name(self) -> str:
        return type(self.model).__name__

    @nn.compact
    def __call__(self, x, train: bool = False):
        init = self.is_initializing()
        if init and self.factory is not None:
            module = self.factory(self.make_rng("params"))
        else:
            module = nnx.clone(self.model)
        for col, kind in COLLECTIONS:
            state = nnx.to_pure_dict(nnx.state(module, kind))
            if init:
                for k, v in _linen_layout(state).items():
                    self.put_variable(col, k, v)
            elif col in self.variables:
                nnx.update(module, _nnx_layout(state, unfreeze(self.variables[col])))
        if train:
            module.train()
            tags = sorted({s.key.tag for _, s in nnx.iter_graph(module)
                           if isinstance(s, nnx.RngStream)})
            if tags:
                key = self.make_rng("dropout")
                nnx.reseed(module, **{t: jax.random.fold_in(key, i) for i, t in enumerate(tags)})
        else:
            module.eval()
        from crimp_jax.graph.network import train_kwargs
        kwargs = train_kwargs(self.train_arg, train)
        if self.takes_rngs:
            kwargs["rngs"] = nnx.Rngs(dropout=self.make_rng("dropout") if train else 0)
        with nnx_paths(module):
            y = module(x, **kwargs)
        if not init and train and self.is_mutable_collection("batch_stats"):
            for k, v in _linen_layout(nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))).items():
                self.put_variable("batch_stats", k, v)
        return y
