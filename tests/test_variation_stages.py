"""The device model as ordered stages: which stages act, ideality derived from them, the drift
stage's per-cell exponent statistics, and compensation computed at read time."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.variation import STAGES, VariationSpec, chip_is_ideal, layer_cells
from crimp_jax.variation.stages import active_stages, drift_exponents
from crimp_jax.xbar import XbarSpec

KEY = jax.random.key(7)


def test_stage_order_and_each_stage_names_its_fields():
    assert [s.name for s in STAGES] == ["g_min", "write_variation", "stuck_at", "drift",
                                        "ir_drop", "compensation", "read_noise"]
    fields = {f.name for f in dataclasses.fields(VariationSpec)}
    for s in STAGES:
        assert s.fields and set(s.fields) <= fields, s.name
    # every field of the block is read by some stage (none is silently ignored); a preset
    # only sets the others
    assert set().union(*(s.fields for s in STAGES)) == fields - {"preset"}


@pytest.mark.parametrize("change, stage", [
    ({"on_off_ratio": 10.0}, "g_min"),
    ({"sigma": 0.1}, "write_variation"),
    ({"sa0_rate": 0.01}, "stuck_at"),
    ({"sa1_rate": 0.01}, "stuck_at"),
    ({"drift_nu_mean": 0.05, "read_time": 3600.0}, "drift"),
    ({"drift_nu_std": 0.02, "read_time": 3600.0}, "drift"),
    ({"read_noise": 0.05}, "read_noise"),
    ({"wire_ratio": 1e-4}, "ir_drop"),
])
def test_ideality_is_derived_from_the_stages(change, stage):
    ideal = VariationSpec()
    assert ideal.is_ideal and active_stages(ideal) == ()
    v = dataclasses.replace(ideal, **change)
    assert not v.is_ideal
    assert stage in [s.name for s in active_stages(v)]
    # compensation alone is not a non-ideality; it runs with the others
    assert "compensation" in [s.name for s in active_stages(v)]


def test_drift_needs_a_read_time_other_than_t0():
    v = VariationSpec(drift_nu_mean=0.05, drift_nu_std=0.02)  # read_time == drift_t0
    assert v.is_ideal
    assert not chip_is_ideal(v, frozenset({"read_time"}))  # a traced read time: drift acts


def test_drift_exponents_per_cell_match_mean_and_spread_over_1e6_cells():
    v = VariationSpec(drift_nu_mean=0.06, drift_nu_std=0.015)
    nu = np.asarray(jax.jit(lambda k: drift_exponents(k, v, (1000, 1000)))(KEY), np.float64)
    n = nu.size
    assert abs(nu.mean() - 0.06) < 4 * 0.015 / np.sqrt(n)
    assert abs(nu.std() / 0.015 - 1) < 0.01
    assert nu.min() >= 0  # clipped (4 sigma below the mean: practically never)


def test_drift_scales_each_cell_by_its_own_exponent():
    """A level-1 cell read at t is (t / t0)^(-nu) with its own nu; recover nu per cell."""
    spec = XbarSpec(bits_per_cell=1)
    q = jnp.ones((500, 400), jnp.float32)  # 2-bit weights: one level-1 cell per weight
    v = VariationSpec(drift_nu_mean=0.05, drift_nu_std=0.02, compensation=False,
                      read_time=20.0 * 1e4)
    key = jax.random.fold_in(KEY, 3)
    cells = jax.jit(lambda k: layer_cells(q, k, spec, v, 2))(key)
    prog = np.asarray(cells.prog)  # (row_tile, xrow, col): the row padding holds no cell
    read = np.asarray(cells.values)[0, 0][prog]  # positive array, programmed cells
    assert read.size == 200_000
    nu = -np.log(read) / np.log(1e4)
    want = np.asarray(drift_exponents(key, v, cells.values.shape))[0, 0][prog]
    np.testing.assert_allclose(nu, want, rtol=1e-4, atol=1e-6)
    assert abs(nu.mean() - 0.05) < 0.001 and abs(nu.std() - 0.02) < 0.001
    # monotone in time: later reads are lower, cell by cell
    later = jax.jit(lambda k: layer_cells(q, k, spec, v, 2, knobs={"read_time": jnp.float32(2e6)}))(key)
    later = np.asarray(later.values)[0, 0][prog]
    assert np.all(later[want > 0] < read[want > 0]) and np.all(later[want == 0] == 1.0)


def test_compensation_is_computed_at_read_time():
    """Uniform drift (nu spread 0) scales every column by the same factor; the all-ones read at
    read time measures it: exact gains undo it, po2_pm gains to within their rounding (the
    largest gap of its mantissas, 1.5 .. 1.75, is +-1/12)."""
    spec = XbarSpec()
    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.integers(-127, 128, (256, 32)), jnp.float32)
    t = 20.0 * 1e4
    v = VariationSpec(drift_nu_mean=0.05, drift_nu_std=0.0, read_time=t, compensation=False)
    off = layer_cells(q, KEY, spec, v, 8)
    on = layer_cells(q, KEY, spec, dataclasses.replace(v, compensation=True), 8)
    exact = layer_cells(q, KEY, spec, dataclasses.replace(v, compensation=True,
                                                         comp_form="exact"), 8)
    levels = np.asarray(off.levels)
    mask = levels > 0
    factor = (1e4) ** -0.05
    np.testing.assert_allclose(np.asarray(off.values)[mask] / levels[mask], factor, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(exact.values)[mask] / levels[mask], 1.0, rtol=1e-5)
    ratio = np.asarray(on.values)[mask] / levels[mask]
    assert np.all(np.abs(ratio - 1) <= 1 / 12) and abs(ratio.mean() - 1) < 1 - factor


def test_gaussian_write_variation_is_clipped_at_zero_conductance():
    """Additive variation cannot make a cell conduct negatively: level-0 cells (half of them
    land below zero unclipped) read exactly zero conductance, none below."""
    spec = XbarSpec()
    q = jnp.round(jax.random.uniform(KEY, (3, 3, 16, 32), minval=-127, maxval=127))
    v = VariationSpec(sigma=0.1, kind="gaussian")
    read = layer_cells(q, KEY, spec, v, 8)
    raw = np.asarray(read.values)  # G - G_min with G_min = 0 here (ideal on/off ratio)
    prog = np.broadcast_to(np.asarray(read.prog, bool), raw.shape)
    assert raw[prog].min() == 0.0
    at_zero = (np.asarray(read.levels) == 0) & prog
    assert 0.3 < np.mean(raw[at_zero] == 0.0) < 0.7
