"""Optimizer and learning-rate schedules (optax): SGD + Nesterov, weight decay on kernels only."""

from __future__ import annotations

import jax
import optax

SCHEDULES = ("cosine", "step", "onecycle", "constant")


def make_schedule(tcfg, steps_per_epoch: int, epochs: int | None = None):
    """Learning rate as a function of the step, from the `train` config block."""
    epochs = tcfg.epochs if epochs is None else epochs
    total = max(1, epochs * steps_per_epoch)
    lr = tcfg.lr
    warmup = int(tcfg.warmup_epochs * steps_per_epoch)
    if tcfg.schedule == "cosine":
        if warmup:
            return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total, warmup + 1))
        return optax.cosine_decay_schedule(lr, total)
    if tcfg.schedule == "step":
        bounds = {int(m * steps_per_epoch): tcfg.step_gamma for m in tcfg.step_milestones}
        return optax.piecewise_constant_schedule(lr, bounds)
    if tcfg.schedule == "onecycle":
        return optax.cosine_onecycle_schedule(total, lr)
    if tcfg.schedule == "constant":
        return optax.constant_schedule(lr)
    raise ValueError(f"train.schedule={tcfg.schedule!r}: expected one of {SCHEDULES}")


def decay_mask(params):
    """True for conv/dense kernels (weight decay applies), False for biases, BN and thresholds."""
    def leaf_mask(path, leaf):
        return getattr(path[-1], "key", None) == "kernel" and leaf.ndim in (2, 4)
    return jax.tree_util.tree_map_with_path(leaf_mask, params)


def make_optimizer(tcfg, steps_per_epoch: int, epochs: int | None = None):
    """SGD with (Nesterov) momentum, decoupled L2 on kernels, the configured schedule."""
    schedule = make_schedule(tcfg, steps_per_epoch, epochs)
    tx = optax.chain(
        optax.add_decayed_weights(tcfg.weight_decay, mask=decay_mask),
        optax.sgd(schedule, momentum=tcfg.momentum or None, nesterov=tcfg.nesterov),
    )
    return tx, schedule
