"""Pruning schedule in optimizer steps: phases and the (optionally cubic) target.

Timeline (all lengths are integer step counts; `count` is the optimizer step, 0-based):

  [0, warmup_steps)                         DENSE     no masks, nothing zeroed
  then prune_epochs epochs of steps_per_epoch steps each. Zerorize-recover (the paper's), the
  epochs counted back from the last:
    the last epoch and every second one before it   ZERORIZE  masks recomputed after every
                                                     step from the new weights, pruned groups
                                                     set to zero
    the others                                      RECOVER   nothing zeroed, masks kept as
                                                     they were (pruned groups regrow)
  or, with `gradual`, every prune step ZERORIZEs (a gradual ramp with masks recomputed after
  every step, Zhu & Gupta 2017);
  then finetune_steps (and any step after)  FIXED     masks frozen, pruned groups kept at zero

With an odd number of zerorize-recover epochs the first one zerorizes too (Z R Z R ... Z).
Target sparsity: constant `final`, or with ramp_steps > 0 the cubic ramp of Zhu & Gupta (2017)
from 0 at the first alternating step to `final` after ramp_steps steps:
  s(t) = final * (1 - (1 - min(1, (t - warmup_steps + 1) / ramp_steps))^3).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

DENSE, ZERORIZE, RECOVER, FIXED = 0, 1, 2, 3
PHASE_NAMES = ("dense", "zerorize", "recover", "fixed")


@dataclasses.dataclass(frozen=True)
class ZerorizeSchedule:
    """Integer step counts of the zerorize-recover schedule (see module docstring)."""

    warmup_steps: int
    steps_per_epoch: int
    prune_epochs: int
    ramp_steps: int = 0
    finetune_steps: int = 0
    gradual: bool = False

    def __post_init__(self):
        for name, low in (("warmup_steps", 0), ("steps_per_epoch", 1),
                          ("prune_epochs", 1), ("ramp_steps", 0), ("finetune_steps", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"schedule.{name}={value!r}: expected an integer >= {low}")
        if self.ramp_steps > self.prune_steps:
            raise ValueError(
                f"schedule.ramp_steps={self.ramp_steps}: expected <= prune_epochs * "
                f"steps_per_epoch = {self.prune_steps} so the last epoch is at full target")

    @property
    def prune_steps(self) -> int:
        return self.prune_epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.prune_steps + self.finetune_steps


def phase(count, schedule: ZerorizeSchedule):
    """int32 phase (DENSE, ZERORIZE, RECOVER or FIXED) of optimizer step `count` (traceable)."""
    count = jnp.asarray(count, jnp.int32)
    t = count - schedule.warmup_steps
    epoch = t // schedule.steps_per_epoch
    from_last = (schedule.prune_epochs - 1) - epoch
    alternating = jnp.where((from_last % 2 == 0) | schedule.gradual, ZERORIZE, RECOVER)
    return jnp.where(t < 0, DENSE,
                     jnp.where(t >= schedule.prune_steps, FIXED, alternating)).astype(
                         jnp.int32)


def is_zerorized(count, schedule: ZerorizeSchedule):
    """True when the params after step `count` are pruned (ZERORIZE or FIXED phase).

    Model selection should only consider evaluations at the end of such steps (typically the
    last step of a zerorize epoch or any fine-tune step).
    """
    p = phase(count, schedule)
    return (p == ZERORIZE) | (p == FIXED)


def target_sparsity(count, schedule: ZerorizeSchedule, final):
    """Target sparsity at step `count`: `final`, or the cubic ramp if ramp_steps > 0."""
    final = jnp.asarray(final, jnp.float32)
    if schedule.ramp_steps == 0:
        return final
    t = jnp.asarray(count, jnp.int32) - schedule.warmup_steps + 1
    progress = jnp.clip(t.astype(jnp.float32) / schedule.ramp_steps, 0.0, 1.0)
    return final * (1.0 - (1.0 - progress) ** 3)
