"""On-device batch assembly and augmentation (pad-4 random crop, horizontal flip) in JAX.

The whole uint8 dataset lives on the accelerator; a jitted train step gathers its batch by
index and augments it here, so there is no host work per step. Augmentation is a pure function
of (images, key): same key, same batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop_flip(images, key, pad: int = 4):
    """(N, H, W, C) uint8 -> same shape: zero-pad by `pad`, random HxW crop, random h-flip."""
    n, h, w, _ = images.shape
    k_crop, k_flip = jax.random.split(key)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))

    out = jax.vmap(crop)(padded, offsets)
    flip = jax.random.bernoulli(k_flip, 0.5, (n,))
    return jnp.where(flip[:, None, None, None], out[:, :, ::-1, :], out)


def epoch_permutation(key, n: int, epoch):
    """Shuffled indices of one epoch: a pure function of (key, epoch)."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)
