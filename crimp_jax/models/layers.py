"""Building blocks shared by all models: a conv+BN unit, an activation tap, input centring.

Models never contain quantization, pruning or variation code. Two neutral hooks let the
parameter transforms work from the outside:

* `ConvBN` runs conv -> BatchNorm while training in float (`folded=False`), or a conv with a
  bias once BatchNorm has been folded into it (`folded=True`, see `crimp_jax.models.fold`).
  Its kernel is always the plain param `<name>/conv/kernel`, so transforms rewrite it directly.
* `Tap` is an identity marking a point where activations are (re)quantized in deployment.
  The quantizer intercepts it with `flax.linen.intercept_methods`; without an interceptor it
  does nothing.

Input images are uint8. `center_pixels` subtracts the integer per-channel mean so that zero
padding in the model equals padding with an integer pixel value; the division by the
per-channel std happens in the first layer (`InputScale`) and is folded into its kernel by
`fold_batchnorm`, so a deployed network consumes raw pixels.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

# CIFAR-10 channel statistics in pixel units (0..255). The mean is rounded to an integer pixel
# value so that centring is an integer subtraction in the integer engine.
CIFAR10_MEAN_INT = (125, 123, 114)
CIFAR10_STD = (62.99, 62.09, 66.70)


def center_pixels(images, dtype=jnp.float32):
    """uint8 (N, H, W, 3) images -> float centred pixels (pixel - integer mean), not scaled."""
    return images.astype(dtype) - jnp.asarray(CIFAR10_MEAN_INT, dtype)


class InputScale(nn.Module):
    """Divides centred pixels by the per-channel std (skipped once folded into the stem)."""

    folded: bool = False

    def __call__(self, x):
        if self.folded:
            return x
        return x / jnp.asarray(CIFAR10_STD, x.dtype)


class Tap(nn.Module):
    """Identity marking an activation (re)quantization point; see `crimp_jax.quant`."""

    signed: bool = False

    def __call__(self, x):
        return x


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm, or, when `folded`, a conv with bias (BN folded in)."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    folded: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.features, tuple(self.kernel_size), tuple(self.strides), padding="SAME",
                    use_bias=self.folded, dtype=self.dtype, name="conv",
                    kernel_init=nn.initializers.kaiming_normal())(x)
        if self.folded:
            return x
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                            dtype=self.dtype, name="bn")(x)
