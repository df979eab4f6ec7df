"""A building block shared by the registered models: conv -> BatchNorm.

Models are ordinary Flax modules on normalised float images (`crimp_jax.graph.Network` owns
the pixel normalisation); they contain no quantization, pruning or variation code, and no
deployment variant: the graph reader (`crimp_jax.graph`) folds BatchNorm and places the
activation quantization points itself. `ConvBN` only fixes the names: its kernel is
`<name>/conv/kernel` and its BatchNorm `<name>/bn`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class ConvBN(nn.Module):
    """Conv (no bias, SAME padding, He-normal init) -> BatchNorm."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.features, tuple(self.kernel_size), tuple(self.strides), padding="SAME",
                    use_bias=False, dtype=self.dtype, name="conv",
                    kernel_init=nn.initializers.kaiming_normal())(x)
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                            dtype=self.dtype, name="bn")(x)
