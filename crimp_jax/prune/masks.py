"""CRIMP masks: a crossbar (whole-tile) pass, then a kernel-group pass inside surviving tiles.

`crimp_prune(kernels, spec, cfg, target)` is a pure, jittable function of the selected layers'
kernels ({slash path: kernel}); `target` may be a traced scalar (sparsity ramps). Shapes are
static: every layer's groups are scored, all layers' groups are concatenated and sorted once
per pass, and the lowest-scoring groups are pruned until a weight budget is met, so there is
one global threshold per pass (ties are broken by position, so the budget is met exactly up to
one group).

Budgets are counted in weights (see `crimp_jax.prune.config` for the sparsity definition):
  budget            = round(target * weights of the selected layers)
  crossbar pass     'fraction': round(crossbar_fraction * target * weights);
                    'threshold': tiles scoring below the kernel-group threshold t of the full
                    budget (found on the unpruned weights), never beyond `budget`.
  kernel-group pass budget - weights already removed by the crossbar pass (nothing if <= 0).
Each pass prunes groups, lowest score first, while the weights pruned *before* a group are
below the pass budget; so a pass meets or exceeds its budget by less than one group.
The kernel-group pass scores each group on its weights in surviving tiles only (its live size);
groups entirely in pruned tiles are already gone and take no part.
Per layer, the highest-scoring groups holding `min_keep` of its weights are protected in each
pass (so the achieved sparsity can fall short of the target; `PruneResult.sparsity` says); in
the crossbar pass, those holding max(min_keep, 1 - crossbar_layer_cap).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.prune import groups as G
from crimp_jax.prune.config import PruneSpec, prune_spec
from crimp_jax.utils.paths import kernel_paths, select_paths
from crimp_jax.xbar.config import XbarSpec, xbar_spec
from crimp_jax.xbar.view import tile_geometry

log = logging.getLogger(__name__)


class PruneResult(NamedTuple):
    """Output of `crimp_prune` (dicts keyed by kernel slash path).

    masks: float32 0/1 of each kernel's shape (multiply the kernel directly).
    tile_keep: float32 (row_tile, col_tile), 1 = crossbar survives the crossbar pass.
    group_keep: float32 (cin, col_tile), 1 = kernel group survives both passes.
    tile_threshold / group_threshold: highest score pruned in each pass (-inf if none).
    sparsity: achieved zeroed weights / weights of the selected layers.
    """

    masks: dict
    tile_keep: dict
    group_keep: dict
    tile_threshold: jnp.ndarray
    group_threshold: jnp.ndarray
    sparsity: jnp.ndarray


def select_prunable(params: Mapping, cfg) -> list:
    """Kernel paths pruned under `cfg` (include/exclude regex rules; every match logged)."""
    cfg = prune_spec(cfg)
    paths = select_paths(kernel_paths(params), cfg.include, cfg.exclude)
    log.info("pruning %d layers: %s", len(paths), paths)
    return paths


def normalize_scores(kernels: Mapping, cfg) -> dict:
    """Kernels as the importance scores see them: with `score_norm='layer_rms'` each kernel is
    divided by its RMS, so one global threshold compares weights relative to their layer."""
    if prune_spec(cfg).score_norm != "layer_rms":
        return dict(kernels)
    return {p: k / (jnp.sqrt(jnp.mean(jnp.square(k))) + 1e-12) for p, k in kernels.items()}


def real_weights(kernel_shape) -> int:
    """Real weights of a kernel (product of its shape)."""
    return int(np.prod(kernel_shape))


def _keep_weights(kernel_shape, min_keep: float) -> int:
    return int(math.ceil(min_keep * real_weights(kernel_shape)))


def lowest_first(scores, sizes, budget, prunable):
    """Prune prunable groups, lowest score first, while the size pruned before them < budget.

    scores (float) and sizes (int32) are 1-D over groups; budget an int32 scalar (may be
    traced); prunable a bool mask. Returns (bool prune flags, highest pruned score or -inf).
    """
    key = jnp.where(prunable, scores, jnp.inf)
    order = jnp.argsort(key, stable=True)
    s = sizes[order]
    before = jnp.cumsum(s) - s
    pruned_sorted = (before < budget) & prunable[order]
    prune = jnp.zeros(scores.shape, bool).at[order].set(pruned_sorted)
    return prune, jnp.max(jnp.where(prune, scores, -jnp.inf), initial=-jnp.inf)


def protect_top(scores, sizes, keep: int, live):
    """Highest-scoring live groups that together hold at least `keep` weights (bool flags)."""
    key = jnp.where(live, -scores, jnp.inf)
    order = jnp.argsort(key, stable=True)
    s = sizes[order]
    before = jnp.cumsum(s) - s
    protected_sorted = (before < keep) & live[order]
    return jnp.zeros(scores.shape, bool).at[order].set(protected_sorted)


def _concat(parts):
    return jnp.concatenate([p.reshape(-1) for p in parts])


def _split(flat, shapes):
    out, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(flat[start:start + n].reshape(shape))
        start += n
    return out


def _kernel_pass(kernels, tile_masks, spec, cfg, budget):
    """Kernel-group pass inside the tiles kept by `tile_masks`; returns (group_keep, thr)."""
    scores, sizes, prunable, live_all, shapes = [], [], [], [], []
    for path, kernel in kernels.items():
        live_sizes = jnp.round(G.kernel_group_sums(tile_masks[path], spec)).astype(jnp.int32)
        s = G.kernel_group_scores(kernel * tile_masks[path], spec, sizes=live_sizes)
        live = live_sizes > 0
        prot = protect_top(s.reshape(-1), live_sizes.reshape(-1),
                           _keep_weights(kernel.shape, cfg.min_keep), live.reshape(-1))
        scores.append(s)
        sizes.append(live_sizes)
        live_all.append(live)
        prunable.append(live.reshape(-1) & ~prot)
        shapes.append(s.shape)
    prune, thr = lowest_first(_concat(scores), _concat(sizes), budget, _concat(prunable))
    keep = _concat(live_all) & ~prune
    return dict(zip(kernels, _split(keep.astype(jnp.float32), shapes))), thr


def crimp_prune(kernels: Mapping, spec: XbarSpec | dict, cfg: PruneSpec | dict,
                target=None) -> PruneResult:
    """CRIMP masks for the selected layers' `kernels` at `target` (default cfg.target_sparsity).

    Compiled once per (kernel shapes, spec, cfg); may be called inside a jitted function, and
    `target` may be traced.
    """
    spec, cfg = xbar_spec(spec), prune_spec(cfg)
    kernels = dict(kernels)
    if not kernels:
        raise ValueError("crimp_prune: no kernels selected (check prune.include/exclude)")
    target = jnp.asarray(cfg.target_sparsity if target is None else target, jnp.float32)
    return _crimp_prune(kernels, spec, cfg, target)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _crimp_prune(kernels, spec: XbarSpec, cfg: PruneSpec, target) -> PruneResult:
    n_total = sum(real_weights(k.shape) for k in kernels.values())
    budget = jnp.round(target * n_total).astype(jnp.int32)
    kernels = normalize_scores(kernels, cfg)

    # Crossbar pass: per layer, the top tiles holding max(min_keep, 1 - crossbar_layer_cap) of
    # its weights are protected.
    tile_keep_share = max(cfg.min_keep, 1.0 - cfg.crossbar_layer_cap)
    t_scores, t_sizes, t_prunable, t_shapes = [], [], [], []
    for kernel in kernels.values():
        s = G.tile_scores(kernel, spec)
        sizes = jnp.asarray(G.tile_sizes(tile_geometry(kernel.shape, spec)), jnp.int32)
        prot = protect_top(s.reshape(-1), sizes.reshape(-1),
                           _keep_weights(kernel.shape, tile_keep_share),
                           jnp.ones(s.size, bool))
        t_scores.append(s)
        t_sizes.append(sizes)
        t_prunable.append(~prot)
        t_shapes.append(s.shape)
    scores, sizes, prunable = _concat(t_scores), _concat(t_sizes), _concat(t_prunable)
    if cfg.crossbar_pass == "fraction":
        tile_budget = jnp.round(cfg.crossbar_fraction * target * n_total).astype(jnp.int32)
    else:  # 'threshold': tiles below the kernel-group threshold of the full target.
        ones = {p: jnp.ones(k.shape, jnp.float32) for p, k in kernels.items()}
        _, group_thr_dense = _kernel_pass(kernels, ones, spec, cfg, budget)
        prunable = prunable & (scores < group_thr_dense)
        tile_budget = budget
    tile_prune, tile_thr = lowest_first(scores, sizes, tile_budget, prunable)
    tile_keep = dict(zip(kernels, _split((~tile_prune).astype(jnp.float32), t_shapes)))
    pruned_by_tiles = jnp.sum(jnp.where(tile_prune, sizes, 0))

    # Kernel-group pass inside surviving tiles.
    tile_masks = {p: G.tile_keep_to_mask(tile_keep[p], k.shape, spec) for p, k in kernels.items()}
    group_keep, group_thr = _kernel_pass(kernels, tile_masks, spec, cfg, budget - pruned_by_tiles)

    masks = {p: tile_masks[p] * G.group_keep_to_mask(group_keep[p], k.shape, spec)
             for p, k in kernels.items()}
    return PruneResult(masks=masks, tile_keep=tile_keep, group_keep=group_keep,
                       tile_threshold=tile_thr, group_threshold=group_thr,
                       sparsity=masks_sparsity(masks))


def crimp_masks(kernels: Mapping, spec, cfg, target=None) -> dict:
    """{path: float32 0/1 mask of the kernel's shape}; see `crimp_prune`."""
    return crimp_prune(kernels, spec, cfg, target).masks


def masks_sparsity(masks: Mapping):
    """Zeroed weights / weights over all masks (jnp scalar; the crimp_jax.prune definition)."""
    total = sum(real_weights(m.shape) for m in masks.values())
    kept = sum(jnp.sum(m != 0) for m in masks.values())
    return 1.0 - kept.astype(jnp.float32) / total
