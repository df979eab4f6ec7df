"""Model registry: build a Flax model or a `Network` by name; the `model` config block.

Every module of this package is imported here, so `@register_model` in a new file is all a new
model needs (`crimp_jax.models.registry`).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import jax.numpy as jnp

from crimp_jax.graph import Network, fold_params
from crimp_jax.models.layers import ConvBN
from crimp_jax.models.registry import register_model, registered
from crimp_jax.utils.blocks import ConfigError, check_choice

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

MODEL_NAMES = tuple(sorted(registered()))
DTYPES = ("float32", "bfloat16")


def check_model_name(name: str) -> None:
    """Raises a one-line error naming the valid models if `name` is not one of them."""
    if name not in registered():
        raise ConfigError(f"model.name={name!r}: unknown model; valid models: "
                          f"{', '.join(MODEL_NAMES)}")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The `model` block.

    Attributes:
      name: a registered model (MODEL_NAMES).
      dtype: compute dtype of the float stage, 'float32' or 'bfloat16' (GPUs/TPUs; emulated
        and slow on CPUs). The quantized stage always computes in float32.
      train_arg: the keyword of a caller's module (`crimp_jax.api.run`) that switches
        training mode: 'auto' finds it in the module's signature (train, training,
        is_training, deterministic, use_running_average, update_batch_norm; deterministic and
        use_running_average are passed negated), 'none' for a module without one, or its
        name. A `Network` passed in keeps its own.
    """

    name: str = "resnet20"
    dtype: str = "float32"
    train_arg: str = "auto"

    def __post_init__(self):
        check_model_name(self.name)
        check_choice("model.dtype", self.dtype, DTYPES)
        if not isinstance(self.train_arg, str) or not self.train_arg.isidentifier():
            raise ConfigError(f"model.train_arg={self.train_arg!r}: expected 'auto', 'none' or "
                              f"the name of the module's train flag")

    @property
    def train_flag(self):
        """`train_arg` as `Network` takes it ('none' -> None)."""
        return None if self.train_arg == "none" else self.train_arg

    @property
    def jnp_dtype(self):
        return jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32


def build_model(name: str, *, num_classes: int = 10, dtype=jnp.float32):
    """The Flax module `name` (see MODEL_NAMES) on normalised float images."""
    check_model_name(name)
    return registered()[name](num_classes=num_classes, dtype=dtype)


def build_network(name: str, image_shape=(32, 32, 3), mean_int=(128, 128, 128),
                  std=(64.0, 64.0, 64.0), *, num_classes: int = 10,
                  dtype=jnp.float32) -> Network:
    """`Network` of the registered model `name` for images of `image_shape` with channel
    statistics `mean_int`, `std` (the data's: `crimp_jax.data`)."""
    return Network(build_model(name, num_classes=num_classes, dtype=dtype), image_shape,
                   tuple(mean_int), tuple(std), name)


def init_folded(network: Network, key):
    """(graph, folded params) of a freshly initialised network (its init statistics): a
    deployable-shaped network without training, for benchmarks and tests."""
    v = network.init(key)
    return network.graph, fold_params(network.graph, v["params"], v.get("batch_stats"))


__all__ = ["ModelSpec", "DTYPES", "ConvBN", "MODEL_NAMES", "build_model", "build_network",
           "check_model_name", "init_folded", "register_model"]
