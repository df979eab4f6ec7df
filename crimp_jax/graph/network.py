"""`Network`: a researcher's Flax module plus what the data says about its input.

The module is an ordinary linen module built from standard layers (see `crimp_jax.graph.ops`)
that maps normalised float images (N, H, W, C) to logits; it never sees quantization, pruning
or variation code. `Network` owns the input convention every stage shares: uint8 images minus
the integer channel mean, divided by the channel std (`normalize`); the deployed network
consumes the raw pixels (the std is folded into the first layers, `graph.fold_params`).

    net = Network(MyNet(num_classes=10), image_shape=(32, 32, 3), mean_int=(125, 123, 114),
                  std=(62.99, 62.09, 66.70))
    variables = net.init(jax.random.key(0))
    logits = net.apply(variables, uint8_images)            # the float (BatchNorm) model
    net.graph                                              # read once from the module

`train_arg` names the module's keyword that switches training mode (BatchNorm batch
statistics); None for a module without one.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from crimp_jax.graph.graph import Graph, build_graph
from crimp_jax.graph.ops import GraphError
from crimp_jax.graph.trace import read_ops


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """A Flax module and its input statistics (see module docstring)."""

    module: nn.Module
    image_shape: tuple
    mean_int: tuple
    std: tuple
    name: str = ""
    train_arg: Optional[str] = "train"

    def __post_init__(self):
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
        return {} if self.train_arg is None else {self.train_arg: train}

    def init(self, key, images=None):
        """Variables of the module for inputs of `image_shape`."""
        if images is None:
            images = jnp.zeros((1, *self.image_shape), jnp.uint8)
        return self.module.init(key, self.normalize(images), **self._kwargs(False))

    def apply(self, variables, images, train: bool = False, mutable=False):
        """Logits (float32) of the float model on uint8 images; with `mutable`, (logits,
        updated collections) as flax returns them."""
        x = self.normalize(images)
        if mutable:
            logits, upd = self.module.apply(variables, x, mutable=mutable, **self._kwargs(train))
            return logits.astype(jnp.float32), upd
        return self.module.apply(variables, x, **self._kwargs(train)).astype(jnp.float32)

    def abstract_variables(self):
        return jax.eval_shape(self.init, jax.random.key(0))

    @functools.cached_property
    def graph(self) -> Graph:
        """The deployable graph, read once from the module (`crimp_jax.graph.trace`)."""
        x = jax.ShapeDtypeStruct((2, *self.image_shape), jnp.float32)
        ops, out = read_ops(self.module, self.abstract_variables(), x, self._kwargs(False))
        return build_graph(ops, out, self.image_shape, self.mean_int, self.std,
                           type(self.module).__name__)
