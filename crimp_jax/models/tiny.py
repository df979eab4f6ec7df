"""A tiny CNN for tests and smoke runs: conv16 -> pool -> conv32 -> pool -> conv32 -> GAP -> fc.

Same building blocks and naming as the real models (`conv0..conv2`, taps `act0..act2`,
`act_gap`, `fc`), so every transform and the integer engine are exercised in seconds.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from crimp_jax.models.layers import ConvBN, InputScale, Tap, center_pixels


class TinyCNN(nn.Module):
    widths: tuple = (16, 32, 32)
    num_classes: int = 10
    folded: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False):
        x = InputScale(self.folded, name="input_scale")(center_pixels(images, self.dtype))
        for i, width in enumerate(self.widths):
            x = ConvBN(width, folded=self.folded, dtype=self.dtype, name=f"conv{i}")(x, train)
            x = Tap(name=f"act{i}")(nn.relu(x))
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = Tap(name="act_gap")(jnp.mean(x, axis=(1, 2)))
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
        return x.astype(jnp.float32)
