"""Every call of a flax layer, linen or NNX, seen by one hook.

Reading a graph (`trace.read_ops`), checking it against the module (`Network.check_graph`),
finding BatchNorm axis names and taking BatchNorm batch statistics in the CRIMP step all need to
see the layers of a researcher's model as they run. Linen layers are seen through flax's method
interceptor; NNX layers (`flax.nnx.Conv`, ...) have no interceptor, so while `layer_calls` is
open the `__call__` of every flax.nnx layer class (`NNX_LAYERS`) is wrapped. An NNX layer's
path is its attribute path in the model (`conv1`, `blocks/0/conv`), published by the linen view
that runs the model (`crimp_jax.graph.from_nnx.FromNNX`, via `nnx_paths`).

    def hook(call: LayerCall, next_fun):
        y = next_fun(*call.args, **call.kwargs)
        seen[call.path] = y
        return y

    with layer_calls(hook):
        module.apply(variables, x)

Everything happens at trace time; outside the context nothing is wrapped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from typing import Any, Callable, Optional

import flax.linen as nn
from flax import nnx


@dataclasses.dataclass(frozen=True)
class LayerCall:
    """One `__call__` of a flax module: the module, its path ('' for the root; None for an
    NNX layer outside any model `FromNNX` runs), its arguments, and whether it is NNX."""

    module: Any
    path: Optional[str]
    args: tuple
    kwargs: dict
    nnx: bool = False


def _nnx_layer_classes() -> tuple:
    """The flax.nnx module classes that define their own `__call__` (Conv, Linear, BatchNorm,
    LayerNorm, Dropout, Sequential, ...)."""
    out = []
    for name in dir(nnx):
        c = getattr(nnx, name)
        if (isinstance(c, type) and issubclass(c, nnx.Module) and "__call__" in c.__dict__
                and c.__module__.startswith("flax.") and c not in out):
            out.append(c)
    return tuple(out)


NNX_LAYERS = _nnx_layer_classes()

_local = threading.local()


def _hooks() -> list:
    if not hasattr(_local, "hooks"):
        _local.hooks, _local.paths = [], []
    return _local.hooks


@contextlib.contextmanager
def nnx_paths(model):
    """Publishes {layer: path} of NNX `model` (its attribute paths) to `layer_calls` hooks
    while the model runs."""
    _hooks()
    paths = {id(node): "/".join(str(p) for p in path)
             for path, node in nnx.iter_graph(model) if isinstance(node, nnx.Module)}
    _local.paths.append(paths)
    try:
        yield
    finally:
        _local.paths.pop()


def _nnx_path(module) -> Optional[str]:
    for paths in reversed(getattr(_local, "paths", [])):
        if id(module) in paths:
            return paths[id(module)]
    return None


def _wrap(cls):
    original = cls.__dict__["__call__"]

    @functools.wraps(original)
    def __call__(self, *args, **kwargs):
        hooks = _hooks()
        if not hooks:
            return original(self, *args, **kwargs)
        call = LayerCall(self, _nnx_path(self), args, kwargs, nnx=True)
        return _run(hooks, call, functools.partial(original, self))

    __call__.__crimp_original__ = original
    return __call__


def _run(hooks, call, next_fun):
    """`next_fun` through the hooks, innermost (last opened) first."""
    fun = next_fun
    for hook in hooks:
        fun = functools.partial(_one, hook, call, fun)
    return fun(*call.args, **call.kwargs)


def _one(hook, call, next_fun, *args, **kwargs):
    return hook(dataclasses.replace(call, args=args, kwargs=kwargs), next_fun)


@contextlib.contextmanager
def layer_calls(hook: Callable):
    """Within: `hook(call: LayerCall, next_fun)` runs in place of every linen module's
    `__call__` and every flax.nnx layer's; it returns the call's output."""
    hooks = _hooks()

    def linen(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        path = "/".join(str(p) for p in context.module.path)
        return hook(LayerCall(context.module, path, args, kwargs), next_fun)

    first = not hooks
    if first:
        for cls in NNX_LAYERS:
            cls.__call__ = _wrap(cls)
    hooks.insert(0, hook)
    try:
        with nn.intercept_methods(linen):
            yield
    finally:
        hooks.remove(hook)
        if first:
            for cls in NNX_LAYERS:
                cls.__call__ = cls.__dict__["__call__"].__crimp_original__
