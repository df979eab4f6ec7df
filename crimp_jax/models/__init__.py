"""Model registry: build a Flax model by name."""

from __future__ import annotations

import jax.numpy as jnp

from crimp_jax.models.layers import CIFAR10_MEAN_INT, CIFAR10_STD, ConvBN, InputScale, Tap
from crimp_jax.models.resnet import CifarResNet
from crimp_jax.models.tiny import TinyCNN
from crimp_jax.models.vgg import VGG

_REGISTRY = {
    "tiny_cnn": lambda **kw: TinyCNN(**kw),
    "vgg16": lambda **kw: VGG(**kw),
    "resnet20": lambda **kw: CifarResNet(depth=20, **kw),
    "resnet32": lambda **kw: CifarResNet(depth=32, **kw),
    "resnet56": lambda **kw: CifarResNet(depth=56, **kw),
}

MODEL_NAMES = tuple(sorted(_REGISTRY))


def check_model_name(name: str) -> None:
    """Raises a one-line error naming the valid models if `name` is not one of them."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")


def build_model(name: str, *, num_classes: int = 10, folded: bool = False,
                dtype=jnp.float32):
    """Returns the Flax module `name` (see MODEL_NAMES); `folded` selects BN-folded layers."""
    check_model_name(name)
    return _REGISTRY[name](num_classes=num_classes, folded=folded, dtype=dtype)


__all__ = ["CIFAR10_MEAN_INT", "CIFAR10_STD", "ConvBN", "InputScale", "Tap", "CifarResNet",
           "TinyCNN", "VGG", "MODEL_NAMES", "build_model", "check_model_name"]
