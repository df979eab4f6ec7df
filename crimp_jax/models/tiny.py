"""A tiny CNN for tests and smoke runs: conv16 -> pool -> conv32 -> pool -> conv32 -> GAP -> fc.

Same building blocks and naming as the real models (`conv0..conv2`, `fc`), so every transform
and the integer engine are exercised in seconds.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from crimp_jax.models.layers import ConvBN
from crimp_jax.models.registry import register_model


@register_model("tiny_cnn")
class TinyCNN(nn.Module):
    widths: tuple = (16, 32, 32)
    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        for i, width in enumerate(self.widths):
            x = nn.relu(ConvBN(width, dtype=self.dtype, name=f"conv{i}")(x, train))
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
