"""CIFAR ResNets (He et al. 2016, section 4.2): ResNet-(6n+2), 3 stages of 16/32/64 channels.

Option-A shortcuts: when a block halves the resolution and doubles the width, the shortcut
subsamples by 2 and zero-pads the new channels (no parameters). Param paths: `stem`,
`s{stage}b{block}/conv1`, `.../conv2` (each `.../conv/kernel`), `fc/kernel`.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from crimp_jax.models.layers import ConvBN
from crimp_jax.models.registry import register_model


def shortcut_option_a(x, features: int, stride: int):
    """Parameter-free shortcut: subsample by `stride`, zero-pad channels up to `features`."""
    if stride > 1:
        x = x[:, ::stride, ::stride, :]
    extra = features - x.shape[-1]
    if extra > 0:
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
    return x


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the option-A shortcut, then ReLU."""

    features: int
    stride: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        s = (self.stride, self.stride)
        y = nn.relu(ConvBN(self.features, strides=s, dtype=self.dtype, name="conv1")(x, train))
        y = ConvBN(self.features, dtype=self.dtype, name="conv2")(y, train)
        return nn.relu(y + shortcut_option_a(x, self.features, self.stride))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs."""

    depth: int = 20
    num_classes: int = 10
    widths: tuple = (16, 32, 64)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        if (self.depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth {self.depth}: expected 6n+2 (20, 32, 44, 56, 110)")
        n = (self.depth - 2) // 6
        x = nn.relu(ConvBN(self.widths[0], dtype=self.dtype, name="stem")(x, train))
        for stage, width in enumerate(self.widths):
            for block in range(n):
                stride = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(width, stride, self.dtype, name=f"s{stage}b{block}")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)


for _depth in (20, 32, 56):
    register_model(f"resnet{_depth}")(functools.partial(CifarResNet, depth=_depth))
