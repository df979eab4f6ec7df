"""Power-of-two quantization numerics: golden values, invariants, straight-through gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.integer.engine import rounding_shift
from crimp_jax.quant import numerics as nm


def test_round_half_up_golden():
    x = jnp.array([-2.5, -1.5, -0.5, 0.49, 0.5, 1.5, 2.5], jnp.float32)
    np.testing.assert_array_equal(nm.round_half_up(x), [-2, -1, 0, 0, 1, 2, 3])


def test_round_half_up_matches_engine_rounding_shift():
    v = jnp.arange(-1000, 1001, dtype=jnp.int32)
    for k in range(-3, 7):
        want = nm.round_half_up(v.astype(jnp.float32) * 2.0 ** -k).astype(jnp.int32)
        np.testing.assert_array_equal(rounding_shift(v, jnp.int32(k)), want, err_msg=f"k={k}")


@pytest.mark.parametrize("bits,signed", [(0, True), (1, True), (33, True), (33, False),
                                         (0, False), (2.0, True), (True, False)])
def test_bad_bit_widths_rejected(bits, signed):
    with pytest.raises(ValueError, match=rf"bit width={bits!r}.*needs an integer in"):
        nm.check_bits(bits, signed)
    with pytest.raises(ValueError):
        nm.fake_quant(jnp.ones(3), 0.0, bits, signed)


def test_qrange_golden():
    assert nm.qrange(8, True) == (-127, 127)
    assert nm.qrange(2, True) == (-1, 1)
    assert nm.qrange(4, False) == (0, 15)
    assert nm.qrange(1, False) == (0, 1)


def test_scale_exponent_golden():
    assert float(nm.scale_exponent(0.3, 8, True)) == -6.0  # ceil(0.3) - 7
    assert float(nm.scale_exponent(0.3, 8, False)) == -7.0  # ceil(0.3) - 8
    assert float(nm.scale_exponent(-2.0, 8, True)) == -9.0  # an integer stays
    assert float(nm.scale_exponent(-2.5, 4, False)) == -6.0  # ceil(-2.5) - 4
    assert float(nm.scale_exponent(0.5, 8, True, "float")) == pytest.approx(-6.5)


def test_exponent_gradient_is_straight_through_and_lsq_scaled():
    g = jax.grad(lambda t: nm.scale_exponent(t, 8, True, grad_factor=0.25))(0.3)
    assert float(g) == 0.25
    g = jax.grad(lambda t: nm.scale_exponent(t, 8, True))(0.3)
    assert float(g) == 1.0


def test_pow2_exact_and_gradient():
    e = jnp.arange(-126, 128, dtype=jnp.float32)
    np.testing.assert_array_equal(nm.pow2_exact(e), np.ldexp(np.float32(1), np.arange(-126, 128)))
    g = jax.grad(lambda x: nm.pow2_exact(x))(3.0)
    assert float(g) == pytest.approx(8 * math.log(2))


def test_unsigned_fake_quant_golden():
    x = jnp.array([-1.0, 0.0, 0.24, 0.26, 0.625, 1.0, 100.0])
    # step 2^-2, 2 bits: levels 0..3; 0.625*4 = 2.5 rounds half up to 3
    np.testing.assert_array_equal(nm.fake_quant(x, -2.0, 2, False),
                                  [0, 0, 0.25, 0.25, 0.75, 0.75, 0.75])


def test_signed_fake_quant_golden():
    x = jnp.array([-9.0, -0.75, 0.3, 2.5, 3.0])
    # step 2^-1, 3 bits: levels -3..3 (x2: -18, -1.5, 0.6, 5, 6)
    np.testing.assert_array_equal(nm.fake_quant(x, -1.0, 3, True), [-1.5, -0.5, 0.5, 1.5, 1.5])


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("signed", [True, False])
def test_levels_in_range_integral_and_idempotent(bits, signed):
    x = 4.0 * jax.random.normal(jax.random.PRNGKey(bits), (2000,))
    e = nm.scale_exponent(1.3, bits, signed)
    assert float(e) == round(float(e))
    q = nm.quantize_levels(x, e, bits, signed)
    qmin, qmax = nm.qrange(bits, signed)
    assert float(q.min()) == qmin and float(q.max()) == qmax  # the wide input hits both ends
    np.testing.assert_array_equal(q, jnp.round(q))
    y = nm.fake_quant(x, e, bits, signed)
    np.testing.assert_array_equal(nm.fake_quant(y, e, bits, signed), y)


def test_ste_gradient_one_inside_zero_outside():
    # 4-bit signed, step 1: levels -7..7. Rounded values: -9, -7, -3, 0, 7, 7, 8, 12.
    x = jnp.array([-9.0, -7.2, -3.3, 0.2, 6.9, 7.4, 7.6, 12.0])
    g = jax.grad(lambda v: nm.fake_quant(v, 0.0, 4, True).sum())(x)
    np.testing.assert_array_equal(g, [0, 1, 1, 1, 1, 1, 0, 0])
    # unsigned 2-bit, step 1: levels 0..3; -0.7 rounds to -1 (outside), 3.6 to 4 (outside)
    x = jnp.array([-0.7, -0.2, 1.0, 3.4, 3.6])
    g = jax.grad(lambda v: nm.fake_quant(v, 0.0, 2, False).sum())(x)
    np.testing.assert_array_equal(g, [0, 1, 1, 1, 0])


def test_threshold_gradient_is_lsq():
    # d/de [q 2^e] = ln2 * (q 2^e - x) inside the range, ln2 * qmax 2^e when clipped above.
    x = jnp.array([0.3, 300.0])
    g = jax.jacobian(lambda e: nm.fake_quant(x, e, 8, True))(0.0)
    np.testing.assert_allclose(g, [math.log(2) * (0.0 - 0.3), math.log(2) * 127], rtol=1e-6)
