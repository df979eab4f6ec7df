"""`zerorize_recover`: an optax wrapper holding CRIMP masks and the step count in its state.

Usage in a training loop (masks are checkpointed with the optimizer state):

    tx = zerorize_recover(optax.sgd(lr, momentum=0.9), spec=cfg.xbar, prune=cfg.prune,
                          schedule=ZerorizeSchedule(warmup, steps_per_epoch, epochs, ...))
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)   # params are required
    params = optax.apply_updates(params, updates)
    eval_params = apply_masks(params, opt_state.masks)         # for evaluation

The loss must use the *unmasked* latent params while training: in a recover epoch pruned
groups regrow only if they receive gradients. After a zerorize (or fixed) step the returned
updates already make `params + updates` equal to the masked new params exactly, so
`apply_masks` is a no-op there; model selection should use only such steps
(`crimp_jax.prune.schedule.is_zerorized(opt_state.count - 1, schedule)`).

One trace for all phases: the phase is computed from the step count and dispatched with
`lax.switch`, never with Python branches on traced values.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from crimp_jax.prune import schedule as S
from crimp_jax.prune.config import prune_spec
from crimp_jax.prune.masks import crimp_masks, select_prunable
from crimp_jax.utils.paths import flatten, unflatten
from crimp_jax.xbar.config import xbar_spec


class ZerorizeRecoverState(NamedTuple):
    """Optimizer state of `zerorize_recover`.

    count: int32 scalar, optimizer steps taken so far.
    masks: nested dict mirroring params, holding only the pruned kernels: float32 0/1 masks of
      the kernels' shapes (all ones until the first zerorize step; unchanged in recover steps).
    inner_state: state of the wrapped optimizer.
    """

    count: jnp.ndarray
    masks: Any
    inner_state: Any


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_str(keypath) -> str:
    """A jax key path -> the slash path used by crimp_jax.utils.paths ('conv0/conv/kernel')."""
    return "/".join(_key_name(k) for k in keypath)


def apply_masks(params, masks):
    """params with every kernel that has a mask multiplied by it (others, and None, untouched).

    `masks` is a nested dict of some kernels (e.g. `opt_state.masks`) or a flat
    {slash path: mask} dict.
    """
    flat = {p: m for p, m in flatten(masks).items() if m is not None} if masks else {}

    def one(keypath, p):
        m = flat.get(path_str(keypath))
        return p if m is None else p * m.astype(p.dtype)

    return jax.tree_util.tree_map_with_path(one, params)


def zero_pruned_updates(updates, params, masks_flat: Mapping):
    """Updates such that params + updates == (params + updates) * mask, bit-exactly.

    Kept entries keep their update; pruned entries get -params (p + (-p) == 0 exactly).
    """
    def one(keypath, u, p):
        m = masks_flat.get(path_str(keypath))
        return u if m is None else jnp.where(m > 0, u, -p).astype(u.dtype)

    return jax.tree_util.tree_map_with_path(one, updates, params)


def zerorize_recover(inner: optax.GradientTransformation, *, spec, prune,
                     schedule: S.ZerorizeSchedule) -> optax.GradientTransformation:
    """Wraps `inner` with CRIMP zerorize-recover pruning (see module docstring).

    Args:
      inner: the optimizer whose updates are pruned (e.g. optax.sgd with momentum).
      spec: the `xbar` config block or XbarSpec (crossbar geometry of the groups).
      prune: the `prune` config block or PruneSpec (target, passes, min_keep, layer rules).
      schedule: step counts of the phases (`ZerorizeSchedule`).
    """
    spec, cfg = xbar_spec(spec), prune_spec(prune)

    def init(params):
        paths = select_prunable(params, cfg)
        flat = flatten(params)
        masks = unflatten({p: jnp.ones(flat[p].shape, jnp.float32) for p in paths})
        return ZerorizeRecoverState(count=jnp.zeros((), jnp.int32), masks=masks,
                                    inner_state=inner.init(params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("zerorize_recover.update needs params (masks come from weights)")
        inner_updates, inner_state = inner.update(updates, state.inner_state, params)
        old_masks = flatten(state.masks)

        def keep_masks(_):
            return inner_updates, old_masks

        def zerorize(_):
            new = optax.apply_updates(params, inner_updates)
            flat_new = flatten(new)
            target = S.target_sparsity(state.count, schedule, cfg.target_sparsity)
            masks = crimp_masks({p: flat_new[p] for p in old_masks}, spec, cfg, target)
            return zero_pruned_updates(inner_updates, params, masks), masks

        def fixed(_):
            return zero_pruned_updates(inner_updates, params, old_masks), old_masks

        branches = [None] * 4
        branches[S.DENSE] = keep_masks
        branches[S.RECOVER] = keep_masks
        branches[S.ZERORIZE] = zerorize
        branches[S.FIXED] = fixed
        new_updates, masks = jax.lax.switch(S.phase(state.count, schedule), branches, None)
        return new_updates, ZerorizeRecoverState(count=state.count + 1, masks=unflatten(masks),
                                                 inner_state=inner_state)

    return optax.GradientTransformation(init, update)
