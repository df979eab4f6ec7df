"""ResNet-18, CIFAR variant (He et al. 2016 with the 3x3 stem of CIFAR codebases): a 3x3 conv
stem (64 channels, no max pool), 4 stages of 2 basic blocks (64/128/256/512 channels, stride 2
from the second stage on), projection shortcuts (1x1 conv + BN) where the shape changes, global
average pooling and a Dense classifier; about 11.17M parameters for 10 classes.

Written with plain flax layers only (nn.Conv, nn.BatchNorm, nn.relu, nn.Dense): this file is
the whole of what adding the model took (`register_model` makes it `model.name='resnet18'`).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from crimp_jax.models.registry import register_model


class Block(nn.Module):
    features: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        conv = lambda f, k, s, name: nn.Conv(f, (k, k), (s, s), padding="SAME" if k > 1 else 0,
                                             use_bias=False, dtype=self.dtype, name=name)
        bn = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                       epsilon=1e-5, dtype=self.dtype, name=name)
        y = nn.relu(bn("bn1")(conv(self.features, 3, self.stride, "conv1")(x)))
        y = bn("bn2")(conv(self.features, 3, 1, "conv2")(y))
        if self.stride != 1 or x.shape[-1] != self.features:
            x = bn("proj_bn")(conv(self.features, 1, self.stride, "proj")(x))
        return nn.relu(y + x)


@register_model("resnet18")
class ResNet18(nn.Module):
    num_classes: int = 10
    widths: tuple = (64, 128, 256, 512)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(self.widths[0], (3, 3), padding="SAME", use_bias=False, dtype=self.dtype,
                    name="stem")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 dtype=self.dtype, name="stem_bn")(x))
        for stage, width in enumerate(self.widths):
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                x = Block(width, stride, self.dtype, name=f"s{stage}b{block}")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
