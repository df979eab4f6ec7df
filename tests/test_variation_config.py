"""Validation of the `variation` block: bad values give errors naming the value and range."""

import pytest

from crimp_jax.variation import VariationSpec, default_variation_config, variation_spec


def test_default_block_round_trips():
    assert variation_spec(default_variation_config()) == VariationSpec()
    assert VariationSpec().is_ideal and not VariationSpec(sigma=0.1).is_ideal


@pytest.mark.parametrize("kwargs, message", [
    (dict(sigma=-0.1), r"variation.sigma=-0.1: expected a finite number in \[0, 2\]"),
    (dict(sigma=float("nan")), r"variation.sigma=nan"),
    (dict(read_noise=-1.0), r"variation.read_noise=-1.0"),
    (dict(read_noise=1e30), r"variation.read_noise=1e\+30: expected a finite number in \[0, 1\]"),
    (dict(sa0_rate=1.5), r"variation.sa0_rate=1.5: expected a finite number in \[0, 1\]"),
    (dict(sa1_rate=-0.01), r"variation.sa1_rate=-0.01: expected a finite number in \[0, 1\]"),
    (dict(sa0_rate=0.6, sa1_rate=0.6), r"sa0_rate \+ sa1_rate = 1.2: expected <= 1"),
    (dict(mode="tile"), r"variation.mode='tile': expected one of \('cell', 'weight'\)"),
    (dict(kind="uniform"), r"variation.kind='uniform'"),
    (dict(comp_form="po3"), r"variation.comp_form='po3'"),
    (dict(on_off_ratio=0.5), r"variation.on_off_ratio=0.5: expected 0 \(ideal\) or a finite"),
    (dict(comp_m_max=0), r"variation.comp_m_max=0: expected an int in \[1, 20\]"),
])
def test_bad_values_are_rejected_with_the_value_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VariationSpec(**kwargs)


def test_unknown_key_is_rejected():
    with pytest.raises(ValueError, match=r"unknown variation key\(s\) \['sigmaa'\]"):
        variation_spec({"sigmaa": 0.1})
