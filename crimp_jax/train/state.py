"""Training state: one pytree that is checkpointed whole (step, params, model state, optimizer)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import struct


@struct.dataclass
class TrainState:
    """All that a run needs to continue exactly.

    params: trainable variables, a dict of Flax collections ({'params': ..., 'quant': ...}).
    model_state: non-trainable collections updated by the forward ({'batch_stats': ...}).
    opt_state: optax state (masks of the pruning wrapper live here too).
    """

    step: Any
    params: Any
    model_state: Any
    opt_state: Any

    @classmethod
    def create(cls, params, model_state, tx):
        return cls(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                   opt_state=tx.init(params))
