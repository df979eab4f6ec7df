"""Bit-slicing of integer weights into cell levels (crimp_jax.xbar.cells)."""

import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.xbar import XbarSpec
from crimp_jax.xbar.cells import combine_slices, max_level, place_values, slice_weights


@pytest.mark.parametrize("spec, bits, slices", [
    (XbarSpec(bits_per_cell=2), 8, 4),
    (XbarSpec(bits_per_cell=3), 8, 3),  # 7 magnitude bits in 3 slices: top slice partial
    (XbarSpec(bits_per_cell=1), 4, 3),
    (XbarSpec(bits_per_cell=2), 4, 2),  # a W4 layer on the default cells: 2 slices, not 4
    (XbarSpec(bits_per_cell=2, differential=False), 8, 4),
    (XbarSpec(bits_per_cell=3, differential=False), 5, 2),
])
def test_every_integer_round_trips_and_levels_fit_a_cell(spec, bits, slices):
    qmax = 2 ** (bits - 1) - 1
    q = jnp.arange(-qmax, qmax + 1, dtype=jnp.float32)
    levels = slice_weights(q, spec, bits)
    assert levels.shape[:2] == (slices, 2 if spec.differential else 1)
    assert place_values(spec, bits).shape == (slices,)
    assert float(levels.min()) >= 0 and float(levels.max()) <= max_level(spec)
    np.testing.assert_array_equal(np.asarray(levels), np.round(np.asarray(levels)))
    np.testing.assert_array_equal(np.asarray(combine_slices(levels, spec, bits)), np.asarray(q))


def test_golden_slices_of_minus_45_on_2bit_cells():
    # 45 = 0b10_11_01 -> slices (lsb first) 1, 3, 2, 0 in the negative array.
    levels = np.asarray(slice_weights(jnp.asarray([-45.0]), XbarSpec(), 8))[:, :, 0]
    np.testing.assert_array_equal(levels[:, 0], [0, 0, 0, 0])
    np.testing.assert_array_equal(levels[:, 1], [1, 3, 2, 0])


def test_out_of_range_weight_is_an_error():
    with pytest.raises(ValueError, match=r"outside the 8-bit signed range \[-127, 127\]"):
        slice_weights(jnp.asarray([128.0]), XbarSpec(), 8)
    with pytest.raises(ValueError, match=r"outside the 4-bit signed range \[-7, 7\]"):
        slice_weights(jnp.asarray([8.0]), XbarSpec(), 4)
