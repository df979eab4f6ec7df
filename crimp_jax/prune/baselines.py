"""Baselines at equal sparsity: unstructured magnitude pruning and filter pruning.

Both use the same rules as CRIMP (`crimp_jax.prune.masks`): one global ordering across the
selected layers, a weight budget round(target * weights), lowest score first, and per-layer
protection of the top groups holding `min_keep` of the layer's weights.
  unstructured  group = one weight, score = |w|.
  filter        group = one output channel (a matrix column: all cin*k*k rows),
                score = L2 / sqrt(cin*k*k).
Their hardware cost (crossbars freed, alignment units needed) is in
`crimp_jax.prune.repack.layer_hardware` with scheme 'unstructured' or 'filter'.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

import jax
import jax.numpy as jnp

from crimp_jax.prune.masks import lowest_first, protect_top, real_weights
from crimp_jax.xbar.view import kernel_to_matrix, matrix_to_kernel


def _budget(kernels, target):
    n_total = sum(real_weights(k.shape) for k in kernels.values())
    return jnp.round(jnp.asarray(target, jnp.float32) * n_total).astype(jnp.int32)


def _global_masks(kernels: Mapping, target, min_keep: float, score_fn):
    """score_fn(matrix (row, col)) -> (scores, sizes, expand(keep) -> matrix mask)."""
    if not 0.0 <= float(min_keep) <= 1.0:
        raise ValueError(f"min_keep={min_keep!r}: expected a float in [0, 1]")
    scores, sizes, prunable, expands, shapes = [], [], [], [], []
    for kernel in kernels.values():
        s, n, expand = score_fn(kernel_to_matrix(kernel).astype(jnp.float32))
        keep = int(math.ceil(min_keep * real_weights(kernel.shape)))
        prot = protect_top(s, n, keep, jnp.ones(s.shape, bool))
        scores.append(s)
        sizes.append(n)
        prunable.append(~prot)
        expands.append(expand)
        shapes.append(s.shape[0])
    prune, _ = lowest_first(jnp.concatenate(scores), jnp.concatenate(sizes),
                            _budget(kernels, target), jnp.concatenate(prunable))
    keep = (~prune).astype(jnp.float32)
    out, start = {}, 0
    for (path, kernel), expand, n in zip(kernels.items(), expands, shapes):
        out[path] = matrix_to_kernel(expand(keep[start:start + n]), kernel.shape)
        start += n
    return out


def _weight_scores(m):
    return (jnp.abs(m).reshape(-1), jnp.ones(m.size, jnp.int32),
            lambda keep: keep.reshape(m.shape))


def _filter_scores(m):
    n_rows = m.shape[0]
    score = jnp.sqrt(jnp.sum(jnp.square(m), axis=0) / n_rows)
    return (score, jnp.full(m.shape[1], n_rows, jnp.int32),
            lambda keep: jnp.broadcast_to(keep[None, :], m.shape))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _masks(kernels, target, min_keep: float, kind: str):
    score_fn = _weight_scores if kind == "unstructured" else _filter_scores
    return _global_masks(kernels, target, min_keep, score_fn)


def magnitude_masks(kernels: Mapping, target, min_keep: float = 0.0) -> dict:
    """Unstructured magnitude pruning: {path: float32 0/1 mask of the kernel's shape}."""
    return _masks(dict(kernels), jnp.asarray(target, jnp.float32), float(min_keep),
                  "unstructured")


def filter_masks(kernels: Mapping, target, min_keep: float = 0.0) -> dict:
    """Filter (output-channel) pruning: {path: float32 0/1 mask of the kernel's shape}."""
    return _masks(dict(kernels), jnp.asarray(target, jnp.float32), float(min_keep), "filter")
