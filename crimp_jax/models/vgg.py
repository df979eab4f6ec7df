"""VGG-16 for CIFAR-10: 13 conv3x3+BN+ReLU layers, 5 max-pools, one Dense classifier.

Param paths: conv0 ... conv12 (each `convI/conv/kernel` and `convI/bn`), `fc/kernel`.
With 32x32 inputs the five pools leave 1x1x512 features, classified by one 512->10 Dense layer
(the CIFAR variant used by the CRIMP papers; about 14.7M parameters).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from crimp_jax.models.layers import ConvBN
from crimp_jax.models.registry import register_model

VGG16_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M")


@register_model("vgg16")
class VGG(nn.Module):
    """VGG over a plan of conv widths and 'M' (2x2 max-pool) entries."""

    plan: tuple = VGG16_PLAN
    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        i = 0
        for entry in self.plan:
            if entry == "M":
                x = nn.max_pool(x, (2, 2), (2, 2))
                continue
            x = nn.relu(ConvBN(entry, dtype=self.dtype, name=f"conv{i}")(x, train))
            i += 1
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
