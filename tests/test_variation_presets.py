"""Measured-device presets (`variation.preset`, crimp_jax/variation/presets.py): the fields they
set, overriding them one by one, and the cell statistics they produce against the published
formulas written out here independently (IBM aihwkit's PCMLikeNoiseModel and
ReRamWan2022NoiseModel, in uS)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.utils.blocks import ConfigError
from crimp_jax.variation import VariationSpec
from crimp_jax.variation.presets import PRESETS
from crimp_jax.variation.stages import Cells, Draw, _write_variation, drift_exponents

L = 3  # 2-bit cells; G_max = L level units (ideal on/off ratio: G_min = 0)
N = 200_000  # cells per level: the std is measured to about 0.3%


def pcm_sigma_us(x):  # Nandakumar et al. 2019, as aihwkit writes it (g_max = 25 uS)
    return 0.26348 + 1.9650 * x - 1.1731 * x ** 2


def rram_sigma_us(x):  # Wan et al. 2022, aihwkit's fit at 1 s (g_max = 40 uS)
    return 0.348 + 16.030 * x - 43.853 * x ** 2 + 45.393 * x ** 3 - 16.815 * x ** 4


def test_a_preset_fills_defaults_and_every_field_overrides_it():
    v = VariationSpec(preset="pcm_nandakumar2019")
    assert (v.kind, v.sigma, v.drift_t0, v.drift_nu_log) == ("gaussian", 1.0, 20.0,
                                                             (-0.0155, -0.0125))
    assert v.has_drift and not v.is_ideal
    w = VariationSpec(preset="pcm_nandakumar2019", sigma=0.5, drift_t0=1.0,
                      drift_nu_clip=(0.0, 1.0, 0.0, 1.0 - 1e-9))
    assert (w.sigma, w.drift_t0, w.prog_poly) == (0.5, 1.0, v.prog_poly)
    assert VariationSpec(preset="rram_wan2022").has_drift is False
    with pytest.raises(ConfigError, match=r"variation.preset='pcm': expected one of"):
        VariationSpec(preset="pcm")
    with pytest.raises(ConfigError, match=r"variation.prog_poly=\(\): expected 1 to 6 numbers"):
        VariationSpec(prog_poly=())
    with pytest.raises(ConfigError, match=r"variation.drift_nu_std=-0.01: expected"):
        VariationSpec(drift_nu_std=-0.01)  # a negative intercept only with a log law


@pytest.mark.parametrize("preset, sigma_us, g_max", [
    ("pcm_nandakumar2019", pcm_sigma_us, 25.0), ("rram_wan2022", rram_sigma_us, 40.0)])
def test_programming_noise_per_level_is_the_published_law(preset, sigma_us, g_max):
    v = VariationSpec(preset=preset)
    levels = jnp.repeat(jnp.arange(L + 1, dtype=jnp.float32), N).reshape(1, 1, 1, L + 1, N)
    cells = Cells(levels, levels, jnp.ones_like(levels), jnp.ones(levels.shape, bool))
    d = Draw(jax.random.key(3), v, 0.0, L, jnp.ones((1, 1, 1, L + 1, N)))
    raw = np.asarray(_write_variation(cells, d).raw)[0, 0, 0]
    for lev in range(L + 1):
        x = lev / L
        want = sigma_us(x) / g_max * L  # uS -> units of G_max -> level units
        if lev == 0:  # clipped at zero: half the cells read 0, the rest a half-normal
            assert abs(np.mean(raw[lev] == 0) - 0.5) < 0.01
            np.testing.assert_allclose(np.mean(raw[lev]), want / np.sqrt(2 * np.pi), rtol=0.02)
        else:
            np.testing.assert_allclose(np.std(raw[lev]), want, rtol=0.01)
            np.testing.assert_allclose(np.mean(raw[lev]), lev, atol=4 * want / np.sqrt(N))


def test_pcm_drift_exponents_follow_the_conductance_dependent_law():
    v = VariationSpec(preset="pcm_nandakumar2019")
    for x in (1.0, 0.3, 0.05, 0.001):
        nu = np.asarray(drift_exponents(jax.random.key(1), v, (N,), jnp.full((N,), x)))
        mu = np.clip(-0.0155 * np.log(x) + 0.0244, 0.049, 0.1)
        sd = np.clip(-0.0125 * np.log(x) - 0.0059, 0.008, 0.045)
        np.testing.assert_allclose(nu.mean(), mu, atol=4 * sd / np.sqrt(N) + 1e-4)
        np.testing.assert_allclose(nu.std(), sd, rtol=0.02)
    # the constant law is unchanged: no x given, or slopes of zero
    c = dataclasses.replace(VariationSpec(), drift_nu_mean=0.05, drift_nu_std=0.02)
    np.testing.assert_array_equal(drift_exponents(jax.random.key(1), c, (8,)),
                                  drift_exponents(jax.random.key(1), c, (8,), jnp.ones(8)))


def test_every_preset_names_its_source():
    for name, p in PRESETS.items():
        assert p.technology in ("PCM", "RRAM") and "et al." in p.source, name
        VariationSpec(preset=name)  # valid
