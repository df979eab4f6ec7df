"""The one optimizer/schedule spec of both training stages, and the optax factory built from it.

`OptimSpec` holds the keys the `train` (float stage) and `crimp` (quantized stage) blocks share;
`TrainSpec` and `CrimpSpec` (`crimp_jax.train.config`) extend it, so both blocks are parsed,
validated and turned into an optimizer by the same code. Milestones of the 'step' schedule are
resolved here, once: a milestone m < 1 is the fraction m of the stage's epochs, m >= 1 an epoch.

Optimizers ('optimizer' key):
  sgd   SGD with (Nesterov) momentum.
  lars  SGD momentum followed by a per-layer trust ratio (`optax.scale_by_trust_ratio`): each
        step changes a leaf by about lr times its norm. Meant for the BN-folded network, whose
        layers' weight scales differ by orders of magnitude.
  adam  Adam.
Weight decay is decoupled L2 on conv/dense kernels only (never biases, BN or thresholds).

Schedules ('schedule' key), all in optimizer steps after `warmup_epochs` of linear warm-up
from 0:
  cosine    hold the peak rate for `hold_epochs`, then cosine decay to 0 at the stage's end.
  step      multiply by `step_gamma` at each milestone.
  onecycle  optax's cosine one-cycle over the stage.
  constant  the peak rate throughout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from crimp_jax.utils.blocks import check_bool, check_choice, check_float

OPTIMIZERS = ("sgd", "lars", "adam")
SCHEDULES = ("cosine", "step", "onecycle", "constant")


@dataclasses.dataclass(frozen=True)
class OptimSpec:
    """Optimizer and learning-rate schedule keys shared by the `train` and `crimp` blocks.

    Attributes:
      optimizer: 'sgd', 'lars' or 'adam' (module docstring).
      lr: peak learning rate (> 0).
      momentum: SGD/LARS momentum in [0, 1) (0: none).
      nesterov: Nesterov momentum.
      weight_decay: decoupled L2 on kernels, in [0, 1) (a fraction of the kernel added to its
        gradient each step; typical values 1e-4 to 5e-4).
      schedule: 'cosine', 'step', 'onecycle' or 'constant'.
      warmup_epochs: linear warm-up from 0 to `lr` (epochs, may be fractional), >= 0.
      hold_epochs: 'cosine': epochs at the peak rate after the warm-up before the decay, >= 0.
      step_milestones: 'step': epochs where the rate is multiplied by `step_gamma`; a value
        m < 1 is the fraction m of the stage (0.5 = half-way), m >= 1 an epoch.
      step_gamma: 'step': factor applied at each milestone, in (0, 1].
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    hold_epochs: float = 0.0
    step_milestones: tuple = (0.5, 0.75)
    step_gamma: float = 0.1

    def __post_init__(self):
        b = self.block_name
        check_choice(f"{b}.optimizer", self.optimizer, OPTIMIZERS)
        check_float(f"{b}.lr", self.lr, 0.0, lo_open=True)
        check_float(f"{b}.momentum", self.momentum, 0.0, 1.0, hi_open=True)
        check_bool(f"{b}.nesterov", self.nesterov)
        check_float(f"{b}.weight_decay", self.weight_decay, 0.0, 1.0, hi_open=True)
        check_choice(f"{b}.schedule", self.schedule, SCHEDULES)
        check_float(f"{b}.warmup_epochs", self.warmup_epochs, 0.0)
        check_float(f"{b}.hold_epochs", self.hold_epochs, 0.0)
        milestones = tuple(self.step_milestones)
        for m in milestones:
            check_float(f"{b}.step_milestones entry", m, 0.0, lo_open=True)
        object.__setattr__(self, "step_milestones", milestones)
        check_float(f"{b}.step_gamma", self.step_gamma, 0.0, 1.0, lo_open=True)

    block_name = "optim"  # overridden by the stage specs ('train', 'crimp') for messages


def milestone_epochs(spec: OptimSpec, epochs: int) -> tuple:
    """The 'step' milestones in epochs: m < 1 is a fraction of `epochs` (the one resolution)."""
    return tuple(m * epochs if m < 1 else float(m) for m in spec.step_milestones)


def make_schedule(spec: OptimSpec, steps_per_epoch: int, epochs: int):
    """Learning rate as a function of the optimizer step, over a stage of `epochs` epochs."""
    total = max(1, int(epochs * steps_per_epoch))
    lr = spec.lr
    warmup = int(spec.warmup_epochs * steps_per_epoch)
    if spec.schedule == "cosine":
        hold = int(spec.hold_epochs * steps_per_epoch)
        decay = optax.cosine_decay_schedule(lr, max(1, total - warmup - hold))
        parts = [optax.linear_schedule(0.0, lr, warmup)] if warmup else []
        parts += [optax.constant_schedule(lr)] if hold else []
        bounds = [warmup] if warmup else []
        if hold:
            bounds.append(warmup + hold)
        return optax.join_schedules(parts + [decay], bounds) if parts else decay
    if spec.schedule == "step":
        bounds = {int(round(m * steps_per_epoch)): spec.step_gamma
                  for m in milestone_epochs(spec, epochs)}
        base = optax.piecewise_constant_schedule(lr, bounds)
    elif spec.schedule == "onecycle":
        return optax.cosine_onecycle_schedule(total, lr)
    else:
        base = optax.constant_schedule(lr)
    if not warmup:
        return base
    return lambda step: jnp.where(step < warmup, lr * step / warmup, base(step))


def decay_mask(params):
    """True for conv/dense kernels (weight decay applies), False for biases, BN and thresholds."""
    def leaf_mask(path, leaf):
        return getattr(path[-1], "key", None) == "kernel" and leaf.ndim in (2, 4)
    return jax.tree_util.tree_map_with_path(leaf_mask, params)


def make_optimizer(spec: OptimSpec, steps_per_epoch: int, epochs: int):
    """(optax transformation, schedule) of `spec` for a stage of `epochs` epochs."""
    schedule = make_schedule(spec, steps_per_epoch, epochs)
    if spec.optimizer == "adam":
        scale = optax.scale_by_adam()
    else:
        scale = optax.trace(spec.momentum, spec.nesterov) if spec.momentum else optax.identity()
        if spec.optimizer == "lars":
            scale = optax.chain(scale, optax.scale_by_trust_ratio())
    tx = optax.chain(optax.add_decayed_weights(spec.weight_decay, mask=decay_mask), scale,
                     optax.scale_by_learning_rate(schedule))
    return tx, schedule
