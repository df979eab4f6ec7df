"""Self-compensation: error reduction on a 1152 x 128 layer and exactly representable gains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.variation import VariationSpec, layer_effective, pm_mantissas, round_gain
from crimp_jax.variation.device import cell_levels, programmed_cells, row_tiles
from crimp_jax.xbar import XbarSpec

SPEC = XbarSpec()  # 128 x 128 arrays of 2-bit cells, differential; 8-bit weights
RNG = np.random.default_rng(0)
Q = jnp.asarray(RNG.integers(-127, 128, size=(1152, 128)), jnp.float32)  # 3x3x128 -> 128 conv
X = jnp.asarray(RNG.random((16, 1152)), jnp.float32)  # 16 non-negative input vectors


def _errors(vspec, chips=2):
    mv, cs = [], []
    f = jax.jit(lambda k: layer_effective(Q, k, SPEC, vspec, 8)[0])
    for c in range(chips):
        eff = f(jax.random.PRNGKey(c))
        mv.append(float(jnp.linalg.norm(X @ eff - X @ Q) / jnp.linalg.norm(X @ Q)))
        # column-sum error: the all-ones read of the logical (signed) columns
        cs.append(float(jnp.linalg.norm(eff.sum(0) - Q.sum(0)) / jnp.linalg.norm(Q.sum(0))))
    return np.mean(mv), np.mean(cs)


def test_compensation_halves_the_matvec_error_at_sigma_0_3():
    none = _errors(VariationSpec(sigma=0.3, compensation=False))
    po2 = _errors(VariationSpec(sigma=0.3, comp_form="po2"))
    pm = _errors(VariationSpec(sigma=0.3, comp_form="po2_pm", comp_m_max=6))
    exact = _errors(VariationSpec(sigma=0.3, comp_form="exact"))
    # Measured (4 chips): matvec error 0.26 -> 0.134 (po2_pm), 0.122 (exact), 0.26 (po2);
    # column-sum error 0.27 -> 0.063 (po2_pm), ~0 (exact gains make every column sum exact).
    assert 0.2 < none[0] < 0.32
    assert pm[0] < 0.6 * none[0] and pm[1] < 0.35 * none[1]
    assert exact[1] < 1e-5
    assert exact[0] <= pm[0] * 1.05
    assert po2[0] > 0.9 * none[0]  # bare powers of two round almost every gain to 1


def _gains(vspec, key):
    # Recompute the chip's calibration exactly as layer_effective does, to inspect the gains.
    from crimp_jax.variation.compensate import column_gains
    prog = programmed_cells(Q.shape, SPEC)[None, None]
    levels, *_ = cell_levels(row_tiles(Q, SPEC), SPEC, vspec, 8)
    z = jax.random.normal(jax.random.fold_in(key, 0), (levels.size,)).reshape(levels.shape)
    intended = jnp.sum(levels * prog, axis=-2)
    measured = jnp.sum(levels * jnp.exp(vspec.sigma * z) * prog, axis=-2)
    return column_gains(intended, measured, vspec.comp_form, vspec.comp_m_max)


def _representable(g, form, m_max):
    mant, ex = np.frexp(np.asarray(g, np.float64))  # g = mant * 2^ex, mant in [0.5, 1)
    if form == "po2":
        return np.all(mant == 0.5)
    allowed = {0.5} | {0.5 * (1 + 2.0 ** -m) for m in range(1, m_max + 1)} \
        | {1 - 2.0 ** -m for m in range(1, m_max + 1)}
    return all(m in allowed for m in mant.ravel())


@pytest.mark.parametrize("form, m_max", [("po2_pm", 6), ("po2_pm", 3), ("po2", 6)])
def test_every_gain_is_exactly_a_shift_and_add_form(form, m_max):
    vspec = VariationSpec(sigma=0.3, comp_form=form, comp_m_max=m_max)
    g = np.asarray(_gains(vspec, jax.random.PRNGKey(3)))
    assert g.shape == (4, 2, 9, 128)  # (slice, polarity, row_tile, col)
    assert _representable(g, form, m_max)
    if form == "po2_pm":
        assert len(np.unique(g)) >= 4  # it does compensate, unlike bare powers of two
    # A wide range of raw gains: the result is exactly the nearest allowed value.
    raw = np.exp(np.random.default_rng(1).normal(0, 1, size=4000)).astype(np.float32)
    r = np.asarray(round_gain(jnp.asarray(raw), form, m_max))
    assert _representable(r, form, m_max)
    if form == "po2":  # nearest in log2
        np.testing.assert_array_equal(r, 2.0 ** np.round(np.log2(raw.astype(np.float64))))
    else:  # nearest in value among every 2^k * allowed mantissa
        allowed = np.asarray(pm_mantissas(m_max), np.float64)
        cands = np.unique((allowed[None] * 2.0 ** np.arange(-8, 9)[:, None]).ravel())
        nearest = cands[np.argmin(np.abs(cands[None] - raw[:, None].astype(np.float64)), 1)]
        np.testing.assert_array_equal(r, nearest)


def test_round_gain_golden_values():
    g = jnp.asarray([1.0, 1.02, 0.97, 1.3, 3.1, 0.26])
    np.testing.assert_array_equal(np.asarray(round_gain(g, "po2")), [1, 1, 1, 1, 4, 0.25])
    np.testing.assert_array_equal(np.asarray(round_gain(g, "po2_pm", 6)),
                                  [1, 1 + 2 ** -6, 1 - 2 ** -5, 1.25, 3.0, 0.25 * (1 + 2 ** -5)])
    assert float(pm_mantissas(1).max()) == 2.0
