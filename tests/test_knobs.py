"""The swept-knob mapping (`crimp_jax.variation.knobs`): a traced knob programs the same chip as
the config field it overrides, switches on the stage that reads it, and bad sweeps are refused
in one line naming the key."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.config import parse_config
from crimp_jax.evaluate.config import EvaluateSpec
from crimp_jax.utils.blocks import ConfigError
from crimp_jax.variation import VariationSpec, perturb
from crimp_jax.variation.knobs import KNOBS, device_at
from crimp_jax.variation.stages import active_stages, chip_is_ideal, chips_identical
from crimp_jax.xbar.config import XbarSpec
from tests.conftest import tiny_config

KEY = jax.random.key(7)
SPEC = XbarSpec(rows=8, cols=8)


def _qe():
    q = jax.random.randint(jax.random.key(1), (12, 6), -127, 128).astype(jnp.float32)
    return {"k": (q, jnp.float32(-3.0))}


@pytest.mark.parametrize("name, config_value", [
    ("sigma", 0.2), ("read_time", 3600.0), ("wire_ratio", 1e-3), ("sa0_rate", 0.05),
    ("sa1_rate", 0.1)])
def test_a_traced_knob_programs_the_chip_of_its_config_field(name, config_value):
    base = VariationSpec(sigma=0.1, drift_nu_mean=0.05, drift_nu_std=0.02)
    field = KNOBS[name].field
    fixed = perturb(_qe(), KEY, dataclasses.replace(base, **{field: config_value}), SPEC, 8)
    traced = jax.jit(lambda v: perturb(_qe(), KEY, base, SPEC, 8, knobs={name: v}))(
        jnp.float32(config_value))
    np.testing.assert_allclose(np.asarray(traced["k"]), np.asarray(fixed["k"]), rtol=1e-6)


def test_a_knob_switches_on_the_stage_that_reads_its_field():
    ideal = VariationSpec()
    assert chip_is_ideal(ideal)
    def acting(knobs):  # the non-ideality stages that act (compensation is on by default)
        return [s.name for s in active_stages(ideal, knobs) if not s.corrective]

    assert acting({"wire_ratio"}) == ["ir_drop"] and acting({"sigma"}) == ["write_variation"]
    # a traced zero changes nothing: the same kernels as the ideal chip
    q = _qe()
    at_zero = jax.jit(lambda v: perturb(q, KEY, ideal, SPEC, 8, knobs={"wire_ratio": v}))(
        jnp.float32(0.0))
    np.testing.assert_allclose(np.asarray(at_zero["k"]),
                               np.asarray(perturb(q, KEY, ideal, SPEC, 8)["k"]), atol=1e-5)
    # a sweep point's concrete values decide whether its chips are ideal
    assert chip_is_ideal(device_at(ideal, {"wire_ratio": 0.0, "adc_bits": 5.0}))
    wired = device_at(ideal, {"wire_ratio": 1e-3})
    assert not chip_is_ideal(wired)
    # IR drop draws nothing: every chip is the same chip (Monte Carlo evaluates one for all)
    assert chips_identical(wired) and not chips_identical(device_at(wired, {"sigma": 0.1}))
    other = perturb(q, jax.random.key(99), wired, SPEC, 8)["k"]
    np.testing.assert_array_equal(np.asarray(perturb(q, KEY, wired, SPEC, 8)["k"]),
                                  np.asarray(other))


@pytest.mark.parametrize("knob, values, match", [
    ("sigmaa", (0.1,), r"evaluate.knob='sigmaa': not a swept knob; expected one of "
                       r"\('sigma', 'read_time', 'wire_ratio', 'sa0_rate', 'sa1_rate', "
                       r"'adc_bits'"),
    ("wire_ratio", (), r"evaluate.knob_values=\(\): expected at least one value of wire_ratio"),
    ("wire_ratio", (0.0, 2.0), r"evaluate.knob_values entry for knob 'wire_ratio'=2.0: "
                               r"expected a finite number in \[0, 1\]"),
    ("read_time", (0.0,), r"entry for knob 'read_time'=0.0: expected a finite number in "
                          r"\(0, inf\]"),
    ("adc_bits", (4.5,), r"entry for knob 'adc_bits'=4.5: expected an integer in \[1, 16\]"),
    ("", (0.1,), r"evaluate.knob_values=\(0.1,\) without evaluate.knob"),
])
def test_bad_knob_sweeps_raise_one_clear_error(knob, values, match):
    with pytest.raises(ConfigError, match=match):
        EvaluateSpec(knob=knob, knob_values=values)


def test_an_adc_knob_needs_finite_adcs():
    c = tiny_config()
    c.evaluate.knob, c.evaluate.knob_values = "adc_bits", (4, 6)
    with pytest.raises(ConfigError, match=r"evaluate.knob='adc_bits' sweeps finite ADCs, but "
                                          r"adc.bits=0"):
        parse_config(c)
    c.adc.bits = 6
    assert parse_config(c).evaluate.knob_values == (4.0, 6.0)
