"""zerorize_recover optax wrapper: phases, exact zeroing, regrowth in recover epochs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from crimp_jax.prune.config import PruneSpec
from crimp_jax.prune.optimizer import (
    ZerorizeRecoverState,
    apply_masks,
    zerorize_recover,
)
from crimp_jax.prune.schedule import (
    DENSE,
    FIXED,
    RECOVER,
    ZERORIZE,
    ZerorizeSchedule,
    is_zerorized,
    phase,
    target_sparsity,
)
from crimp_jax.xbar.config import XbarSpec

SPEC = XbarSpec(rows=8, cols=4)
CFG = PruneSpec(target_sparsity=0.5, crossbar_fraction=0.0, min_keep=0.0)


def test_phases_and_last_epoch_zerorizes():
    s = ZerorizeSchedule(warmup_steps=2, steps_per_epoch=2, prune_epochs=4,
                         finetune_steps=1)
    got = [int(phase(t, s)) for t in range(s.total_steps + 1)]
    # Epochs counted back from the last (which zerorizes): R Z R Z.
    assert got == [DENSE] * 2 + [RECOVER] * 2 + [ZERORIZE] * 2 + [RECOVER] * 2 \
        + [ZERORIZE] * 2 + [FIXED] * 2
    assert [bool(is_zerorized(t, s)) for t in (1, 4, 9, 10)] == [False, True, True, True]


def test_cubic_ramp():
    s = ZerorizeSchedule(warmup_steps=3, steps_per_epoch=2, prune_epochs=3, ramp_steps=4)
    got = [float(target_sparsity(t, s, 0.8)) for t in (2, 3, 4, 5, 6, 7)]
    # progress (t - 3 + 1) / 4 clipped: 0, .25, .5, .75, 1, 1.
    want = [0.8 * (1 - (1 - p) ** 3) for p in (0, 0.25, 0.5, 0.75, 1, 1)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match=r"ramp_steps=7: expected <= .* = 6"):
        ZerorizeSchedule(warmup_steps=0, steps_per_epoch=2, prune_epochs=3, ramp_steps=7)
    with pytest.raises(ValueError, match=r"steps_per_epoch=0: expected an integer >= 1"):
        ZerorizeSchedule(warmup_steps=0, steps_per_epoch=0, prune_epochs=1)


def _setup(kernel, target, schedule):
    params = {"fc": {"kernel": kernel, "bias": jnp.zeros(4)}}
    tx = zerorize_recover(optax.sgd(0.1, momentum=0.9), spec=SPEC, prune=CFG,
                          schedule=schedule)

    def loss(p):
        return 0.5 * jnp.sum((p["fc"]["kernel"] - target) ** 2) + jnp.sum(p["fc"]["bias"] ** 2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, state):
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        return optax.apply_updates(p, updates), updates, state

    return params, tx.init(params), step


def test_zeroed_group_regrows_in_recover_and_is_zeroed_again():
    # Dense (2, 4) on 8x4: kernel groups are rows. Row 0 is pulled towards 1, row 1 stays at 3,
    # so at 50% row 0 is the pruned group; in recover steps its gradient grows it back.
    s = ZerorizeSchedule(warmup_steps=1, steps_per_epoch=3, prune_epochs=3,
                         finetune_steps=1)
    target = jnp.array([[1.0] * 4, [3.0] * 4])
    params, state, step = _setup(jnp.array([[0.1] * 4, [3.0] * 4]), target, s)
    assert isinstance(state, ZerorizeRecoverState)
    chex.assert_trees_all_equal(state.masks, {"fc": {"kernel": jnp.ones((2, 4))}})
    row0 = []
    for t in range(s.total_steps):
        before = params
        params, updates, state = step(params, state)
        row0.append(float(params["fc"]["kernel"][0, 0]))
        if int(phase(t, s)) in (ZERORIZE, FIXED):
            # params + updates == masked new params, exactly.
            chex.assert_trees_all_equal(
                jax.tree.map(lambda p, u: p + u, before, updates),
                apply_masks(params, state.masks))
            assert np.all(np.asarray(params["fc"]["kernel"][0]) == 0.0)
            chex.assert_trees_all_equal(state.masks["fc"]["kernel"],
                                        jnp.array([[0.0] * 4, [1.0] * 4]))
    assert row0[0] > 0  # dense warm-up: nothing zeroed
    assert row0[1:4] == [0.0, 0.0, 0.0]  # zerorize epoch
    assert 0 < row0[4] < row0[5] < row0[6]  # recover epoch: the zeroed group regrows
    assert row0[7:] == [0.0] * 4  # zerorize epoch, then fixed-mask fine-tune
    assert int(state.count) == s.total_steps
    # Momentum is kept across phases: the inner trace of row 0 is not reset to zero.
    assert float(state.inner_state[0].trace["fc"]["kernel"][0, 0]) < 0


def test_regrown_group_can_win_the_next_zerorize_epoch():
    # Row 0 wants to grow to 5, row 1 decays to 0: row 0 is pruned in the first step (0.59 vs
    # 0.9), regrows, and by the last zerorize epoch row 1 is the pruned group instead.
    s = ZerorizeSchedule(warmup_steps=0, steps_per_epoch=1, prune_epochs=3)
    params, state, step = _setup(jnp.array([[0.1] * 4, [1.0] * 4]),
                                 jnp.array([[5.0] * 4, [0.0] * 4]), s)
    params, _, state = step(params, state)
    chex.assert_trees_all_equal(state.masks["fc"]["kernel"][:, 0], jnp.array([0.0, 1.0]))
    for _ in range(2):
        params, _, state = step(params, state)
    chex.assert_trees_all_equal(state.masks["fc"]["kernel"][:, 0], jnp.array([1.0, 0.0]))
    assert float(params["fc"]["kernel"][0, 0]) > 0 and float(params["fc"]["kernel"][1, 0]) == 0


def test_update_requires_params_and_apply_masks_skips_unmasked():
    s = ZerorizeSchedule(warmup_steps=0, steps_per_epoch=1, prune_epochs=1)
    tx = zerorize_recover(optax.sgd(0.1), spec=SPEC, prune=CFG, schedule=s)
    params = {"fc": {"kernel": jnp.ones((2, 4)), "bias": jnp.ones(4)}}
    state = tx.init(params)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, state)
    masks = {"fc": {"kernel": jnp.array([[0.0] * 4, [1.0] * 4]), "bias": None}}
    out = apply_masks(params, masks)
    chex.assert_trees_all_equal(out, {"fc": {"kernel": masks["fc"]["kernel"],
                                             "bias": jnp.ones(4)}})
