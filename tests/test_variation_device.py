"""Device model statistics, determinism, pruned crossbars and the ideal limit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.quant.numerics import pow2
from crimp_jax.variation import (
    VariationSpec,
    chip_key,
    layer_effective,
    path_id,
    perturb,
)
from crimp_jax.xbar import XbarSpec

KEY = jax.random.PRNGKey(42)
N = 1000  # 1000 x 1000 weights = 1e6 observed cells


@pytest.mark.parametrize("mode, spec, bits", [
    ("weight", XbarSpec(), 8),
    # 2-bit weights on 1-bit cells: one slice, so q = 1 reads exactly one cell per weight.
    ("cell", XbarSpec(bits_per_cell=1), 2),
])
def test_log_conductance_std_matches_sigma_over_1e6_cells(mode, spec, bits):
    sigma = 0.3
    q = jnp.ones((N, N), jnp.float32)  # every weight is one level-1 cell in the positive array
    vspec = VariationSpec(sigma=sigma, mode=mode, compensation=False)
    eff, _ = jax.jit(lambda k: layer_effective(q, k, spec, vspec, bits))(KEY)
    theta = np.log(np.asarray(eff, np.float64)).ravel()
    assert theta.size == 1_000_000
    assert abs(theta.std() / sigma - 1) < 0.02, theta.std()
    assert abs(theta.mean()) < 0.002
    # E[e^theta] = e^(sigma^2/2): uncompensated variation biases outputs upwards.
    assert abs(np.exp(theta).mean() / np.exp(sigma ** 2 / 2) - 1) < 0.005


def test_stuck_at_rates_over_1e6_cells():
    # Offset storage, 3-bit weights, one cell per weight: q = 0 is stored as level 4 of 0..7.
    # SA0 (G_max) reads 7 -> eff = 7 - 4 = 3; SA1 (G_min) reads 0 -> eff = -4.
    spec = XbarSpec(differential=False)
    sa0, sa1 = 0.0175, 0.0904
    vspec = VariationSpec(mode="weight", sa0_rate=sa0, sa1_rate=sa1, compensation=False)
    eff = np.asarray(jax.jit(lambda k: layer_effective(jnp.zeros((N, N)), k, spec, vspec, 3)[0])(
        KEY))
    n = eff.size
    assert set(np.unique(eff)) == {-4.0, 0.0, 3.0}
    for rate, value in ((sa0, 3.0), (sa1, -4.0)):
        measured = np.mean(eff == value)
        assert abs(measured - rate) < 5 * np.sqrt(rate * (1 - rate) / n), (rate, measured)


def _qe(shape=(3, 3, 16, 24), seed=0, per_column=False):
    rng = np.random.default_rng(seed)
    q = jnp.asarray(rng.integers(-127, 128, size=shape), jnp.float32)
    e = jnp.asarray(rng.integers(-8, -2, size=shape[-1]) if per_column else -5, jnp.float32)
    return q, e


def test_same_seed_and_chip_gives_the_same_chip_and_other_chips_differ():
    qe = {"a/kernel": _qe(seed=0), "b/kernel": _qe((40, 10), seed=1)}
    vspec = VariationSpec(sigma=0.2, sa0_rate=0.01, sa1_rate=0.01)
    run = jax.jit(lambda k: perturb(qe, k, vspec, XbarSpec(), 8))
    c1, c1_again, c2 = (run(chip_key(KEY, i)) for i in (1, 1, 2))
    for path in qe:
        np.testing.assert_array_equal(np.asarray(c1[path]), np.asarray(c1_again[path]))
        assert not np.allclose(np.asarray(c1[path]), np.asarray(c2[path]))
    # A layer's draw depends on (key, its path) only, not on the other layers present.
    alone = jax.jit(lambda k: perturb({"b/kernel": qe["b/kernel"]}, k, vspec, XbarSpec(), 8))(
        chip_key(KEY, 1))
    np.testing.assert_array_equal(np.asarray(alone["b/kernel"]), np.asarray(c1["b/kernel"]))


@pytest.mark.parametrize("per_column", [False, True])
def test_sigma_zero_without_faults_reproduces_q_times_2e_exactly(per_column):
    q, e = _qe(per_column=per_column)
    want = np.asarray(q) * np.exp2(np.asarray(e))
    ideal = perturb({"k": (q, e)}, KEY, VariationSpec(), XbarSpec(), 8)["k"]
    np.testing.assert_array_equal(np.asarray(ideal), want)
    # The full cell path (traced sigma = 0, compensation on) is exact too.
    full = jax.jit(lambda s: perturb({"k": (q, e)}, KEY, VariationSpec(), XbarSpec(), 8,
                                     knobs={"sigma": s})["k"])(jnp.float32(0.0))
    np.testing.assert_array_equal(np.asarray(full), want)
    for spec, mode in ((XbarSpec(bits_per_cell=3), "weight"),
                       (XbarSpec(differential=False), "cell")):
        eff = jax.jit(lambda s: layer_effective(q, KEY, spec, VariationSpec(mode=mode), 8,
                                                knobs={"sigma": s})[0])(jnp.float32(0.0))
        np.testing.assert_array_equal(np.asarray(eff), np.asarray(q))


def test_pruned_crossbars_and_removed_rows_are_not_programmed():
    # 300 x 130 Dense kernel on 128 x 128 crossbars: 3 x 2 tiles. Every programmed cell is SA0.
    q = jnp.zeros((300, 130))
    mask = np.ones((300, 130), np.float32)
    mask[128:256, 0:128] = 0  # tile (1, 0) pruned: a whole crossbar
    mask[5, 0:128] = 0  # one row of tile (0, 0) removed (kernel-group pruning)
    mask[7, 3] = 0  # a single zero inside a programmed row: the cell is still programmed
    # Offset storage: an SA0 cell reads the top level, so every programmed cell is visible.
    vspec = VariationSpec(sa0_rate=1.0, compensation=False)
    spec = XbarSpec(differential=False)
    eff = np.asarray(jax.jit(lambda m: layer_effective(q, KEY, spec, vspec, 8, mask=m)[0])(
        jnp.asarray(mask)))
    stuck = 255 - 128  # all 4 slices at the top level: 255, minus the offset 128
    assert np.all(eff[128:256, 0:128] == 0) and np.all(eff[5, 0:128] == 0)
    assert eff[7, 3] == stuck and eff[0, 0] == stuck and eff[256, 129] == stuck
    assert eff[5, 128] == stuck  # row 5 survives in the other column tile


def test_finite_on_off_ratio_makes_zero_cells_leak():
    q = jnp.zeros((64, 8))
    run = lambda vspec: jax.jit(lambda k: layer_effective(q, k, XbarSpec(), vspec, 8)[0])(KEY)
    ideal = run(VariationSpec(sigma=0.3, compensation=False))
    assert np.all(np.asarray(ideal) == 0)  # ideal on/off: a level-0 cell conducts nothing
    leaky = run(VariationSpec(sigma=0.3, on_off_ratio=10.0, compensation=False))
    assert np.std(np.asarray(leaky)) > 0.1


def test_straight_through_gradient_and_single_trace():
    q, e = _qe((4, 30))
    vspec = VariationSpec(sigma=0.3, mode="weight")

    @jax.jit
    @chex.assert_max_traces(n=1)
    def grads(q, e, key):
        loss = lambda q, e: jnp.sum(perturb({"k": (q, e)}, key, vspec, XbarSpec(), 8)["k"])
        return jax.grad(loss, argnums=(0, 1))(q, e)

    gq, ge = grads(q, e, KEY)
    grads(q, e, jax.random.PRNGKey(7))  # a new key does not retrace
    eff, ratio = jax.jit(lambda k: layer_effective(q, k, XbarSpec(), vspec, 8))(
        jax.random.fold_in(KEY, path_id("k")))
    np.testing.assert_allclose(np.asarray(gq), np.asarray(ratio) * 2.0 ** -5, rtol=1e-6)
    np.testing.assert_allclose(float(ge), float(jnp.sum(eff)) * 2.0 ** -5 * np.log(2), rtol=1e-4)
    w = 2.0 ** -5 * np.asarray(q)
    assert np.all(np.asarray(ratio)[w != 0] > 0)


def test_pow2_is_exact_with_a_log2_gradient():
    e = jnp.asarray([-7.0, 0.0, 3.0])
    np.testing.assert_array_equal(np.asarray(pow2(e)), [2.0 ** -7, 1.0, 8.0])
    g = jax.grad(lambda e: jnp.sum(pow2(e)))(e)
    np.testing.assert_allclose(np.asarray(g), np.log(2) * np.asarray([2.0 ** -7, 1.0, 8.0]),
                               rtol=1e-6)
