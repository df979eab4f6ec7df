"""Model registry: build a Flax model by name; the `model` config block (`ModelSpec`)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from crimp_jax.models.layers import (
    CIFAR10_MEAN_INT,
    CIFAR10_STD,
    ConvBN,
    InputScale,
    Tap,
)
from crimp_jax.models.resnet import CifarResNet
from crimp_jax.models.tiny import TinyCNN
from crimp_jax.models.vgg import VGG
from crimp_jax.utils.blocks import ConfigError, check_choice

_REGISTRY = {
    "tiny_cnn": lambda **kw: TinyCNN(**kw),
    "vgg16": lambda **kw: VGG(**kw),
    "resnet20": lambda **kw: CifarResNet(depth=20, **kw),
    "resnet32": lambda **kw: CifarResNet(depth=32, **kw),
    "resnet56": lambda **kw: CifarResNet(depth=56, **kw),
}

MODEL_NAMES = tuple(sorted(_REGISTRY))
DTYPES = ("float32", "bfloat16")


def check_model_name(name: str) -> None:
    """Raises a one-line error naming the valid models if `name` is not one of them."""
    if name not in _REGISTRY:
        raise ConfigError(f"model.name={name!r}: unknown model; valid models: "
                          f"{', '.join(MODEL_NAMES)}")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The `model` block.

    Attributes:
      name: a registered model (MODEL_NAMES).
      dtype: compute dtype of the float stage, 'float32' or 'bfloat16' (GPUs/TPUs; emulated
        and slow on CPUs). The quantized stage always computes in float32.
    """

    name: str = "resnet20"
    dtype: str = "float32"

    def __post_init__(self):
        check_model_name(self.name)
        check_choice("model.dtype", self.dtype, DTYPES)

    @property
    def jnp_dtype(self):
        return jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32


def build_model(name: str, *, num_classes: int = 10, folded: bool = False,
                dtype=jnp.float32):
    """Returns the Flax module `name` (see MODEL_NAMES); `folded` selects BN-folded layers."""
    check_model_name(name)
    return _REGISTRY[name](num_classes=num_classes, folded=folded, dtype=dtype)


__all__ = ["ModelSpec", "DTYPES", "CIFAR10_MEAN_INT", "CIFAR10_STD", "ConvBN", "InputScale", "Tap", "CifarResNet",
           "TinyCNN", "VGG", "MODEL_NAMES", "build_model", "check_model_name"]
