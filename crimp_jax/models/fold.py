"""Fold BatchNorm (and the input std) into conv kernels and biases: BN model -> folded model.

`fold_batchnorm` is a pure parameter transform. For every `ConvBN` subtree {conv, bn} it
returns {conv: {kernel, bias}} with

    kernel' = kernel * gamma / sqrt(var + eps)      (per output channel)
    bias'   = beta - mean * gamma / sqrt(var + eps)

and it divides the stem's kernel by the per-input-channel pixel std (`InputScale`), so the
folded model (`build_model(..., folded=True)`) computes the same function on the same uint8
images as the BN model in eval mode. Kernels keep their shape and path, so every crossbar
transform applies unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp

from crimp_jax.models.layers import CIFAR10_STD

BN_EPSILON = 1e-5


def stem_name(model_name: str) -> str:
    """Name of the first conv (the one that consumes the centred pixels)."""
    return "stem" if model_name.startswith("resnet") else "conv0"


def _fold_tree(params, stats, stem: str, path=()):
    out = {}
    for key, sub in params.items():
        if isinstance(sub, dict) and set(sub) == {"conv", "bn"}:
            kernel = sub["conv"]["kernel"]
            st = stats[key]["bn"]
            inv = sub["bn"]["scale"] / jnp.sqrt(st["var"] + BN_EPSILON)
            kernel = kernel * inv
            bias = sub["bn"]["bias"] - st["mean"] * inv
            if key == stem and not path:
                kernel = kernel / jnp.asarray(CIFAR10_STD, kernel.dtype)[None, None, :, None]
            out[key] = {"conv": {"kernel": kernel, "bias": bias}}
        elif isinstance(sub, dict):
            out[key] = _fold_tree(sub, stats.get(key, {}), stem, path + (key,))
        else:
            out[key] = sub
    return out


def fold_batchnorm(params, batch_stats, model_name: str):
    """BN-model params + batch_stats -> folded-model params (see module docstring)."""
    return _fold_tree(dict(params), dict(batch_stats), stem_name(model_name))


def init_folded(model_name: str, sample_images, key):
    """(folded model, folded params) of a freshly initialised BN model (its init statistics):
    a deployable-shaped network without training, for benchmarks and tests."""
    from crimp_jax.models import build_model
    v = build_model(model_name).init(key, sample_images[:1])
    return (build_model(model_name, folded=True),
            fold_batchnorm(v["params"], v["batch_stats"], model_name))
