"""The crossbar-faithful product (DACs, ADCs, shift-and-add) against an independent NumPy
reference; the integer engine's crossbar mode bit-exact with the fake-quantized ADC path;
adc.bits = 0 is today's path; the periphery's bad-input errors."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.config import base_config, parse_config
from crimp_jax.integer import convert, engine_apply, make_engine
from crimp_jax.integer.engine import device_arrays
from crimp_jax.periphery import (
    AdcSpec,
    DacSpec,
    Periphery,
    adc_step_log2,
    crossbar_product,
    input_tiles,
    read_reference,
)
from crimp_jax.periphery.reader import calibrate_periphery, crossbar_reader, ideal_reads
from crimp_jax.quant import fake_quant_apply, init_quant_state, make_plan
from crimp_jax.utils.blocks import ConfigError
from crimp_jax.utils.paths import flatten
from crimp_jax.variation import VariationSpec, layer_cells
from crimp_jax.xbar import XbarSpec, tile_geometry
from tests.test_integer_engine import _random_folded, float_dtypes_in_jaxpr


def reference_product(x, q, rows, bpc, weight_bits, in_bits, dac_bits, adc_bits, full_scale,
                      read, differential=True, cell_gain=None):
    """y = x @ q read the way a crossbar periphery reads it, with explicit loops over row tiles,
    input cycles, slices and polarities (float64 NumPy; independent of crimp_jax).

    x: (M, K) integers (may be negative: two unsigned passes); q: (K, N) signed integers;
    cell_gain: optional (S, P, K, N) multiplicative factor per cell (non-ideal cells)."""
    m, k = x.shape
    n = q.shape[1]
    lmax = 2 ** bpc - 1
    slices = -(-(weight_bits - 1 if differential else weight_bits) // bpc)
    offset = 0 if differential else 2 ** (weight_bits - 1)
    # cells[s, p, row, col]
    if differential:
        mags = [np.maximum(q, 0), np.maximum(-q, 0)]
    else:
        mags = [q + offset]
    cells = np.zeros((slices, len(mags), k, n))
    for p, mag in enumerate(mags):
        for s in range(slices):
            cells[s, p] = (mag // (2 ** (bpc * s))) % 2 ** bpc
    if cell_gain is not None:
        cells = cells * cell_gain
    used = min(rows, k)
    fs = full_scale * used * (2 ** dac_bits - 1) * lmax
    signed_adc = differential and read == "differential"
    top = 2 ** (adc_bits - 1) - 1 if signed_adc else 2 ** adc_bits - 1
    a = 0
    while top * 2 ** a < fs:
        a += 1
    lo = -top if signed_adc else 0

    def adc(v):
        return np.clip(np.round(v / 2 ** a), lo, top) * 2 ** a  # NumPy rounds ties to even

    def unsigned(xu):
        y = np.zeros((m, n))
        cycles = -(-in_bits // dac_bits)
        for t0 in range(0, k, rows):
            tile = slice(t0, min(t0 + rows, k))
            for c in range(cycles):
                digit = (xu[:, tile] // 2 ** (c * dac_bits)) % 2 ** dac_bits
                for s in range(slices):
                    if signed_adc:
                        ps = digit @ (cells[s, 0, tile] - cells[s, 1, tile])
                        y += adc(ps) * 2 ** (c * dac_bits) * 2 ** (s * bpc)
                        continue
                    for p in range(len(mags)):
                        sign = -1 if p == 1 else 1
                        ps = digit @ cells[s, p, tile]
                        y += sign * adc(ps) * 2 ** (c * dac_bits) * 2 ** (s * bpc)
        if offset:
            y -= offset * xu.sum(axis=1, keepdims=True)
        return y

    return unsigned(np.maximum(x, 0)) - unsigned(np.maximum(-x, 0))


SETTINGS = [  # rows, cols, bpc, weight bits, in bits, signed, dac, adc, full scale, read, diff
    (16, 8, 2, 8, 8, False, 1, 5, 1.0, "polarity", True),
    (16, 8, 2, 8, 8, True, 2, 6, 1.0, "polarity", True),
    (12, 8, 1, 4, 4, False, 1, 3, 1.0, "differential", True),
    (32, 4, 2, 6, 6, False, 3, 4, 0.25, "polarity", True),  # clipping
    (10, 8, 4, 8, 8, False, 4, 6, 0.5, "differential", True),  # clipping, signed ADC
    (16, 8, 2, 5, 4, False, 2, 5, 1.0, "polarity", False),  # offset storage
    (64, 8, 2, 8, 8, False, 1, 16, 1.0, "polarity", True),  # lossless: equals x @ q
]


@pytest.mark.parametrize("setting", SETTINGS)
def test_crossbar_product_equals_numpy_reference(setting):
    rows, cols, bpc, wb, ib, signed, dac, adc, fs, read, diff = setting
    rng = np.random.default_rng(rows * 7 + wb)
    k, n, m = 37, 11, 6  # 37 rows: a partial last tile
    qmax = 2 ** (wb - 1) - 1
    q = rng.integers(-qmax, qmax + 1, (k, n))
    xmax = 2 ** ib - 1
    x = rng.integers(-xmax if signed else 0, xmax + 1, (m, k))
    spec = XbarSpec(rows=rows, cols=cols, bits_per_cell=bpc, differential=diff)
    per = Periphery(AdcSpec(bits=adc, full_scale=fs, read=read), DacSpec(bits=dac), spec)
    from crimp_jax.periphery.reader import layer_periphery_of
    lp = layer_periphery_of("layer", q.shape, per, wb, ib, signed)
    read_out = layer_cells(jnp.asarray(q, jnp.float32), None, spec, VariationSpec(), wb)
    g = tile_geometry(q.shape, spec)
    xt = input_tiles(jnp.asarray(x, jnp.float32), g.n_row_tiles, g.rows_per_tile)
    want = reference_product(x, q, rows, bpc, wb, ib, dac, adc, fs, read, diff)
    got = crossbar_product(xt, read_out.values, lp, adc, read_out.prog)
    np.testing.assert_array_equal(np.asarray(got, np.float64), want)
    got_int = crossbar_product(xt.astype(jnp.int32), read_out.values.astype(jnp.int32), lp, adc,
                               read_out.prog.astype(jnp.int32))
    assert got_int.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(got_int, np.float64), want)
    traced = jax.jit(lambda b: crossbar_product(xt, read_out.values, lp, b, read_out.prog))(
        jnp.float32(adc))  # a traced ADC resolution (sweeps) gives the same numbers
    np.testing.assert_array_equal(np.asarray(traced, np.float64), want)
    if adc == 16:
        np.testing.assert_array_equal(want, x @ q)
    elif fs < 1:
        assert not np.array_equal(want, x @ q)


@pytest.mark.parametrize("diff, read", [(False, "polarity"), (True, "polarity"),
                                        (True, "differential")])
def test_g_min_in_the_adc_range_takes_range_and_is_subtracted_after_the_adc(diff, read):
    """adc.g_min_in_range: every programmed cell's G_min reaches the ADC (here on/off ratio 2:
    G_min = 3 / 1 = 3 levels, an integer, so a lossless ADC gives the product exactly) and is
    subtracted digitally; the 'max' reference grows to rows x (2^d - 1) x (L + G_min), so a
    5-bit ADC's step doubles (2^4 instead of 2^3) and costs accuracy. A differential read
    cancels it in the analog."""
    from crimp_jax.periphery.reader import layer_periphery_of
    rng = np.random.default_rng(5)
    q = rng.integers(-127, 128, (37, 11))
    x = rng.integers(0, 256, (6, 37))
    spec = XbarSpec(rows=16, cols=8, differential=diff)
    read_out = layer_cells(jnp.asarray(q, jnp.float32), None, spec, VariationSpec(), 8)
    g = tile_geometry(q.shape, spec)
    xt = input_tiles(jnp.asarray(x, jnp.float32), g.n_row_tiles, g.rows_per_tile)

    def product(bits, in_range):
        per = Periphery(AdcSpec(bits=bits, read=read, g_min_in_range=in_range), DacSpec(bits=2),
                        spec, on_off_ratio=2.0)
        lp = layer_periphery_of("layer", q.shape, per, 8, 8, False)
        return lp, np.asarray(crossbar_product(xt, read_out.values, lp, bits, read_out.prog))

    lp, lossless = product(16, True)
    np.testing.assert_array_equal(lossless, x @ q)
    if read == "differential":
        assert lp.g_min == 0.0 and product(5, True)[1].tolist() == product(5, False)[1].tolist()
        return
    assert lp.max_partial_sum == 16 * 3 * (3 + 3) and product(16, False)[0].max_partial_sum == 16 * 3 * 3
    err = {m: np.abs(product(5, m)[1] - x @ q).mean() for m in (False, True)}
    assert err[True] > err[False] > 0


def test_adc_offset_errors_add_their_codes_through_shift_and_add():
    """A constant offset of k LSB in every ADC (gain 1, a lossless 16-bit ADC with step 1, offset
    storage: one read per slice) adds k x tiles x sum_cycles 4^c x sum_slices 4^s to every
    output (hand-computed below); gain 1, offset 0 changes nothing; a gain error scales the
    reads."""
    from crimp_jax.periphery import adc_errors
    from crimp_jax.periphery.reader import layer_periphery_of
    rng = np.random.default_rng(3)
    q = rng.integers(-127, 128, (37, 11))
    x = rng.integers(0, 256, (6, 37))
    spec = XbarSpec(rows=16, cols=8, differential=False)
    per = Periphery(AdcSpec(bits=16), DacSpec(bits=2), spec)
    lp = layer_periphery_of("layer", q.shape, per, 8, 8, False)
    read_out = layer_cells(jnp.asarray(q, jnp.float32), None, spec, VariationSpec(), 8)
    g = tile_geometry(q.shape, spec)
    xt = input_tiles(jnp.asarray(x, jnp.float32), g.n_row_tiles, g.rows_per_tile)
    shape = (3, 4 * 11)  # 3 row tiles; 4 slices x 11 columns, one read each
    ideal = np.asarray(crossbar_product(xt, read_out.values, lp, 16, read_out.prog))
    np.testing.assert_array_equal(ideal, x @ q)

    def with_error(gain, offset):
        err = (jnp.full(shape, gain, jnp.float32), jnp.full(shape, offset, jnp.float32))
        return np.asarray(crossbar_product(xt, read_out.values, lp, 16, read_out.prog,
                                           adc_error=err))

    np.testing.assert_array_equal(with_error(1.0, 0.0), ideal)
    np.testing.assert_array_equal(with_error(1.0, 2.0) - ideal, 2 * 3 * 85 * 85)
    assert np.mean(np.abs(with_error(1.01, 0.0) - ideal)) > 0  # reads scaled by 1%
    g1, o1 = adc_errors(jax.random.key(0), 3, 4, np.arange(11), 0.1, 2.0)
    assert g1.shape == o1.shape == shape and abs(float(jnp.std(o1)) - 2.0) < 0.4


def test_columns_that_share_an_adc_share_its_errors():
    """column_adcs: columns fill crossbars in order and each run of adc_columns columns inside
    one crossbar is one ADC (hand-written below); adc_errors draws one (gain, offset) per ADC,
    row tile and array, repeated over the columns it serves."""
    from crimp_jax.periphery import adc_errors, column_adcs
    np.testing.assert_array_equal(column_adcs(10, 4, 2), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(column_adcs(10, 5, 2), [0, 0, 1, 1, 2, 3, 3, 4, 4, 5])
    np.testing.assert_array_equal(column_adcs(11, 8, 128), [0] * 8 + [1] * 3)  # one per xbar
    np.testing.assert_array_equal(column_adcs(5, 8, 0), np.arange(5))  # one per column
    gain, offset = adc_errors(jax.random.key(0), 3, 2, column_adcs(10, 5, 2), 0.1, 2.0)
    assert gain.shape == offset.shape == (3, 2 * 10)
    o = np.asarray(offset).reshape(3, 2, 10)
    np.testing.assert_array_equal(o[..., 0], o[..., 1])  # one ADC: one draw
    np.testing.assert_array_equal(o[..., 5], o[..., 6])
    assert len(np.unique(o[..., [0, 2, 4, 5, 7, 9]])) == 3 * 2 * 6  # six ADCs, all distinct


def test_a_chips_adc_errors_come_from_its_key():
    """crossbar_reader(key=...): the same key gives the same ADC errors, another key others; no
    errors configured: the key changes nothing."""
    graph, params, x = _random_folded("tiny_cnn")
    cfg = {}
    qstate = init_quant_state(graph, params, x, cfg)
    plan = make_plan(graph, cfg)

    def reader(adc):  # one compile per ADC setting; the chip key is an argument
        per = Periphery(adc, DacSpec(bits=2), XbarSpec())
        return jax.jit(lambda key: fake_quant_apply(graph, params, qstate, x, cfg, crossbar=(
            crossbar_reader(graph, plan, per, ideal_reads(per, plan.wbits), key=key))))

    plain = reader(AdcSpec(bits=8))
    noisy = reader(AdcSpec(bits=8, gain_std=0.05, offset_std=1.0))
    k1, k2 = jax.random.key(1), jax.random.key(2)
    np.testing.assert_array_equal(plain(k1), plain(k2))
    np.testing.assert_array_equal(noisy(k1), noisy(k1))
    assert not np.array_equal(noisy(k1), noisy(k2))
    assert not np.array_equal(noisy(k1), plain(k1))


def _im2col_crossbar_order(x, kh, kw, strides, padding):
    """(n, ho, wo, cin*kh*kw) NumPy im2col, row g = c*kh*kw + i*kw + j (the crossbar view)."""
    (pt, pb), (pl, pr) = padding
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    n, hp, wp, cin = xp.shape
    ho, wo = (hp - kh) // strides[0] + 1, (wp - kw) // strides[1] + 1
    rows = np.zeros((n, ho, wo, cin * kh * kw), x.dtype)
    for c in range(cin):
        for i in range(kh):
            for j in range(kw):
                rows[..., c * kh * kw + i * kw + j] = xp[:, i:i + (ho - 1) * strides[0] + 1:strides[0],
                                                         j:j + (wo - 1) * strides[1] + 1:strides[1], c]
    return rows


CONV_SETTINGS = [  # kernel (kh, kw, cin, cout), strides, padding, xbar rows, channel-aligned,
    # signed input, differential, read, adc bits, full scale
    ((3, 3, 5, 6), (1, 1), ((1, 1), (1, 1)), 16, False, False, True, "differential", 6, 1.0),
    ((3, 3, 4, 3), (2, 2), ((0, 1), (0, 1)), 20, True, False, True, "polarity", 5, 0.5),
    ((1, 1, 12, 4), (2, 2), ((0, 0), (0, 0)), 5, False, False, False, "polarity", 6, 1.0),
    ((2, 3, 3, 5), (1, 2), ((1, 0), (1, 1)), 7, False, True, True, "differential", 4, 1.0),
]


@pytest.mark.parametrize("setting", CONV_SETTINGS)
def test_conv_tiles_as_convolutions_equal_the_product_on_explicit_patches(setting):
    """A convolution's row tiles are read as one small convolution each
    (`graph.arith.conv_rows_dot`: row tiles that split an input channel's kernel positions,
    channel-aligned tiles, strides, asymmetric padding, a signed input, offset storage): the
    same numbers as the product on NumPy im2col rows in the crossbar view's order, float32
    and int32 (both engine convolution implementations)."""
    from crimp_jax.graph.arith import conv_rows_dot
    from crimp_jax.periphery.reader import layer_periphery_of
    kshape, strides, padding, rows, aligned, signed, diff, read, adc, fs = setting
    kh, kw, cin, cout = kshape
    rng = np.random.default_rng(cin * 10 + rows)
    wb, ib = 6, 6
    qmax = 2 ** (wb - 1) - 1
    q = rng.integers(-qmax, qmax + 1, kshape)
    x = rng.integers(-(2 ** ib - 1) if signed else 0, 2 ** ib, (2, 7, 6, cin))
    spec = XbarSpec(rows=rows, cols=8, bits_per_cell=2, differential=diff,
                    channel_aligned=aligned)
    per = Periphery(AdcSpec(bits=adc, full_scale=fs, read=read), DacSpec(bits=2), spec)
    lp = layer_periphery_of("layer", q.shape, per, wb, ib, signed)
    read_out = layer_cells(jnp.asarray(q, jnp.float32), None, spec, VariationSpec(), wb)
    g = tile_geometry(q.shape, spec)
    patches = _im2col_crossbar_order(x, kh, kw, strides, padding)
    xt = input_tiles(jnp.asarray(patches, jnp.float32), g.n_row_tiles, g.rows_per_tile)
    want = np.asarray(crossbar_product(xt, read_out.values, lp, adc, read_out.prog))
    want = want.reshape(patches.shape[:3] + (cout,))
    assert np.any(want != 0)
    for dtype, impl in ((jnp.float32, "im2col"), (jnp.int32, "im2col"), (jnp.int32, "conv")):
        def row_dot(xin, w, lo, hi, impl=impl):
            return conv_rows_dot(xin, w, lo, hi, (kh, kw), strides, padding, impl)
        got = crossbar_product(jnp.asarray(x, dtype), read_out.values.astype(dtype), lp, adc,
                               read_out.prog.astype(dtype), row_dot=row_dot)
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.asarray(got, np.float32), want)


def test_reference_with_non_ideal_cells():
    """Cells read with per-cell factors (a chip): the product reads them cell by cell."""
    rng = np.random.default_rng(3)
    k, n = 20, 5
    q = rng.integers(-127, 128, (k, n))
    x = rng.integers(0, 256, (4, k))
    spec = XbarSpec(rows=8, cols=8)
    vspec = VariationSpec(sigma=0.3, compensation=False)
    read_out = layer_cells(jnp.asarray(q, jnp.float32), jax.random.key(0), spec, vspec, 8)
    levels = np.asarray(read_out.levels, np.float64)
    gain = np.where(levels > 0, np.asarray(read_out.values, np.float64) / np.where(
        levels > 0, levels, 1), 1.0)  # (S, P, T, R, C) -> back to (S, P, row, col)
    s_, p_, t_, r_, c_ = gain.shape
    gain = gain.reshape(s_, p_, t_ * r_, c_)[:, :, :k]
    per = Periphery(AdcSpec(bits=7), DacSpec(bits=2), spec)
    from crimp_jax.periphery.reader import layer_periphery_of
    lp = layer_periphery_of("layer", q.shape, per, 8, 8, False)
    g = tile_geometry(q.shape, spec)
    xt = input_tiles(jnp.asarray(x, jnp.float32), g.n_row_tiles, g.rows_per_tile)
    got = np.asarray(crossbar_product(xt, read_out.values, lp, 7, read_out.prog), np.float64)
    want = reference_product(x, q, 8, 2, 8, 8, 2, 7, 1.0, "polarity", cell_gain=gain)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_adc_rounds_ties_to_even_in_float_and_int():
    from crimp_jax.periphery import adc_read
    ps = jnp.asarray([0, 1, 2, 3, 4, 5, 6, 7, -1, -2, -3, -5, 100], jnp.int32)
    want = [0, 0, 2, 4, 4, 4, 6, 8, 0, -2, -4, -4, 8]  # step 2, codes clipped to [-2, 4]
    np.testing.assert_array_equal(adc_read(ps, 1, -2, 4), want)
    np.testing.assert_array_equal(adc_read(ps.astype(jnp.float32), 1, -2, 4), want)
    np.testing.assert_array_equal(adc_read(ps, 0, -2, 4), np.clip(np.asarray(ps), -2, 4))


def test_adc_step_is_the_smallest_power_of_two_covering_the_full_scale():
    assert adc_step_log2(81.0, 7, False) == 0  # 127 >= 81: lossless
    assert adc_step_log2(81.0, 5, False) == 2  # 31 * 4 = 124 >= 81 > 62
    assert adc_step_log2(81.0, 5, True) == 3  # 15 * 8 = 120 >= 81 > 60
    assert float(adc_step_log2(81.0, jnp.float32(5), False)) == 2.0


def test_read_reference_is_the_quantile_of_the_read_magnitudes():
    reads = [jnp.asarray([[0.0, -3.0], [5.0, 2.0]]), jnp.asarray([[7.0]])]  # |.|: 0 2 3 5 7
    assert float(read_reference(reads, 1.0)) == 7.0
    assert float(read_reference(reads, 0.5)) == 3.0  # the median read
    assert float(read_reference(reads, 0.75)) == 5.0
    assert float(read_reference([jnp.zeros((3, 2))], 1.0)) == 1.0  # at least one level
    # more reads than max_reads: a quantile below 1 from a uniform sample, the largest exact
    many = [jnp.arange(100_000, dtype=jnp.float32).reshape(-1, 10)]
    assert float(read_reference(many, 1.0, max_reads=1000)) == 99_999.0
    assert abs(float(read_reference(many, 0.9, max_reads=10_000)) - 90_000) < 1_000
    assert float(read_reference(many, 0.5, max_reads=100_000)) == 49_999.5  # all: exact


def _calibrated_tiny(adc_bits, quantile=1.0):
    graph, params, x = _random_folded("tiny_cnn")
    cfg = {}
    qstate = init_quant_state(graph, params, x, cfg)
    per = Periphery(AdcSpec(bits=adc_bits, read="differential", full_scale_ref="calibrated",
                            calib_quantile=quantile), DacSpec(bits=4), XbarSpec())
    return graph, params, x, cfg, qstate, calibrate_periphery(graph, params, qstate, cfg, per, x)


def test_calibrated_full_scale_is_the_largest_read_of_the_calibration_images():
    """quantile 1: the reference is each layer's largest |partial sum| on the calibration
    images, so an ADC whose top code reaches every reference reads them all with step 1 and
    no clip: logits equal ideal ADCs bit for bit. Each reference is below the 'max' full scale
    (the worst case of an ideal tile), which would need more bits for the same step."""
    from crimp_jax.periphery.reader import layer_input, layer_periphery_of
    graph, params, x, cfg, qstate, per = _calibrated_tiny(16)
    refs = dict(per.references)
    assert set(refs) == {op["name"] for op in graph.layers}
    plan = make_plan(graph, cfg)
    flat = dict(flatten(params))
    for op in graph.layers:
        lp = layer_periphery_of(op["name"], flat[op["kernel"]].shape, per,
                                plan.wbits[op["kernel"]], *layer_input(plan, op["kernel"]))
        assert lp.calibrated_ref == refs[op["name"]] < lp.max_partial_sum
        assert lp.full_scale_levels() == refs[op["name"]]
    bits = int(np.ceil(np.log2(max(refs.values()) + 1))) + 1  # signed: hi >= every reference
    per_b = dataclasses.replace(per, adc=dataclasses.replace(per.adc, bits=bits))
    xr = crossbar_reader(graph, plan, per_b, ideal_reads(per_b, plan.wbits))
    lf = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg, crossbar=xr))(
        params, qstate, x)
    ideal = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg))(params, qstate, x)
    np.testing.assert_array_equal(np.asarray(lf), np.asarray(ideal))
    per_lo = dataclasses.replace(per, adc=dataclasses.replace(per.adc, bits=bits - 1))
    xr = crossbar_reader(graph, plan, per_lo, ideal_reads(per_lo, plan.wbits))
    lo = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg, crossbar=xr))(
        params, qstate, x)
    assert not np.array_equal(np.asarray(lo), np.asarray(ideal))  # one bit fewer rounds


def test_per_slice_full_scales_calibrate_each_slice_and_read_finer():
    """adc.full_scale_per='slice': one reference per weight slice (4 slices of 2-bit cells);
    with quantile 1 the largest of them is the layer's reference, the high slices' sums are
    smaller, and a 6-bit ADC reads the model closer to ideal ADCs than one step per layer."""
    graph, params, x, cfg, qstate, per = _calibrated_tiny(6)
    adc = dataclasses.replace(per.adc, full_scale_per="slice")
    per_s = calibrate_periphery(graph, params, qstate, cfg,
                                Periphery(adc, per.dac, per.xbar), x)
    layer, sliced = dict(per.references), dict(per_s.references)
    for name, refs in sliced.items():
        assert len(refs) == 4 and max(refs) == layer[name] and min(refs) < layer[name]
    plan = make_plan(graph, cfg)
    ideal = np.asarray(fake_quant_apply(graph, params, qstate, x, cfg))

    def error(p):
        xr = crossbar_reader(graph, plan, p, ideal_reads(p, plan.wbits))
        return np.abs(np.asarray(fake_quant_apply(graph, params, qstate, x, cfg, crossbar=xr))
                      - ideal).mean()

    assert error(per_s) < error(per)


ENGINE_CASES = {
    "tiny_cnn": [(AdcSpec(bits=5, full_scale_ref="calibrated", calib_quantile=0.99),
                  DacSpec(bits=2)),
                 (AdcSpec(bits=5, full_scale_ref="calibrated", full_scale_per="slice"),
                  DacSpec(bits=2)),
                 (AdcSpec(bits=6), DacSpec(bits=4)),
                 (AdcSpec(bits=6, full_scale=0.5, read="differential"), DacSpec(bits=4))],
    # the real model keeps the hardest case: clipping, signed reads, 8-bit DACs (one cycle)
    "resnet20": [(AdcSpec(bits=4, full_scale=0.5, read="differential"), DacSpec(bits=8))],
}


@pytest.mark.slow
@pytest.mark.parametrize("name, setting", [(n, i) for n, cases in ENGINE_CASES.items()
                                           for i in range(len(cases))])
def test_engine_crossbar_mode_equals_fake_quant_adc_path(name, setting):
    adc, dac = ENGINE_CASES[name][setting]
    graph, params, x = _random_folded(name)
    x = x[:4]
    cfg = dict(weight_bits=8, act_bits=8)
    qstate = init_quant_state(graph, params, x, cfg)
    plan = make_plan(graph, cfg)
    per = calibrate_periphery(graph, params, qstate, cfg, Periphery(adc, dac, XbarSpec()), x)
    assert bool(per.references) == (adc.full_scale_ref == "calibrated")
    xr = crossbar_reader(graph, plan, per, ideal_reads(per, plan.wbits))
    lf = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg, crossbar=xr))(
        params, qstate, x)
    ideal = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg))(params, qstate, x)
    assert not np.array_equal(np.asarray(lf), np.asarray(ideal))  # the ADCs do round
    art = convert(graph, params, qstate, cfg, periphery=per)
    assert all("xbar" in s for s in art.ops if s["op"] in ("conv", "dense"))
    # the real model runs XLA:CPU's integer convolutions ('conv': the same crossbar reads,
    # 0.4x the compile time of 'im2col', which the tiny_cnn cases run)
    impl = "conv" if name == "resnet20" and jax.default_backend() == "cpu" else "im2col"
    li = np.asarray(make_engine(art, impl=impl)(x))
    np.testing.assert_array_equal(li.astype(np.float64) * 2.0 ** art.output_exponent,
                                  np.asarray(lf, np.float64))
    if setting == 0:
        jaxpr = jax.make_jaxpr(functools.partial(engine_apply, art.ops))(device_arrays(art), x)
        assert float_dtypes_in_jaxpr(jaxpr) == set()


def test_lossless_adcs_equal_the_ideal_path_bit_for_bit():
    graph, params, x = _random_folded("tiny_cnn")
    cfg = {}
    qstate = init_quant_state(graph, params, x, cfg)
    plan = make_plan(graph, cfg)
    per = Periphery(AdcSpec(bits=16), DacSpec(bits=1), XbarSpec())
    xr = crossbar_reader(graph, plan, per, ideal_reads(per, plan.wbits))
    lf = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg, crossbar=xr))(
        params, qstate, x)
    ideal = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=cfg))(params, qstate, x)
    np.testing.assert_array_equal(np.asarray(lf), np.asarray(ideal))


def test_adc_bits_zero_is_todays_path():
    """adc.bits = 0: Monte Carlo chips compute with effective kernels (no cells kept), the same
    logits as without a periphery."""
    from crimp_jax.evaluate.chips import chip_and_apply
    from crimp_jax.quant import quantize_weights_int

    graph, params, x = _random_folded("tiny_cnn")
    cfg = {}
    qstate = init_quant_state(graph, params, x, cfg)
    qe = quantize_weights_int(graph, params, qstate, cfg)
    vspec = VariationSpec(sigma=0.3)
    per0 = Periphery(AdcSpec(bits=0), DacSpec(), XbarSpec())
    outs = []
    for per in (None, per0):
        chip, apply = chip_and_apply(graph, cfg, vspec, XbarSpec(), per)
        c = chip(jax.random.key(4), params, qstate, qe, None, jnp.float32(0.3))
        assert "k" in c and "cells" not in c
        outs.append(np.asarray(jax.jit(apply)(c, x)))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("key, value, match", [
    ("adc.bits", 17, r"adc.bits=17: expected an int in \[0, 16\]"),
    ("adc.bits", -1, r"adc.bits=-1"),
    ("dac.bits", 0, r"dac.bits=0: expected an int in \[1, 16\]"),
    ("adc.full_scale", 0.0, r"adc.full_scale=0.0"),
    ("adc.full_scale_ref", "auto", r"adc.full_scale_ref='auto'"),
    ("adc.calib_quantile", 0.0, r"adc.calib_quantile=0.0"),
    ("adc.calib_quantile", 1.5, r"adc.calib_quantile=1.5"),
    ("adc.calib_images", 0, r"adc.calib_images=0"),
    ("adc.full_scale_per", "column", r"adc.full_scale_per='column'"),
    ("adc.full_scale_per", "slice", r"adc.full_scale_per='slice' calibrates one reference per "
                                    r"slice: set adc.full_scale_ref='calibrated'"),
    ("adc.gain_std", 0.6, r"adc.gain_std=0.6"),
    ("adc.offset_std", -1.0, r"adc.offset_std=-1.0"),
    ("variation.drift_nu_std", -0.01, r"variation.drift_nu_std=-0.01"),
    ("variation.read_time", 0.0, r"variation.read_time=0.0"),
    ("variation.read_time", -5.0, r"variation.read_time=-5.0"),
    ("evaluate.read_times", (10.0, 0.0), r"evaluate.read_times entry=0.0"),
    ("evaluate.adc_bits", (4, 20), r"evaluate.adc_bits entry=20"),
])
def test_bad_periphery_values_raise_one_clear_error(key, value, match):
    c = base_config()
    c.method = "q"
    block, field = key.split(".")
    c[block][field] = value
    with pytest.raises(ConfigError, match=match):
        parse_config(c)


def test_dac_wider_than_the_activations_is_refused():
    c = base_config()
    c.method = "q"
    c.quant.act_bits = 4
    c.adc.bits = 6
    c.dac.bits = 8
    with pytest.raises(ConfigError, match=r"dac.bits=8: wider than the activations "
                                          r"\(quant.act_bits=4\)"):
        parse_config(c)
    c.dac.bits = 4
    parse_config(c)
    c.evaluate.dac_bits = (2, 6)
    with pytest.raises(ConfigError, match=r"evaluate.dac_bits entry=6"):
        parse_config(c)


def test_differential_read_needs_a_sign_bit():
    with pytest.raises(ConfigError, match="signed ADC needs >= 2"):
        AdcSpec(bits=1, read="differential")
    AdcSpec(bits=2, read="differential")


def test_flop_multiple_counts_passes_cycles_slices_and_reads():
    from crimp_jax.periphery.reader import layer_periphery_of
    spec = XbarSpec()  # 128 rows, 2-bit cells, differential
    per = Periphery(AdcSpec(bits=6), DacSpec(bits=1), spec)
    lp = layer_periphery_of("l", (3, 3, 16, 16), per, 8, 8, False)  # 144 rows: 128 + 16
    assert (lp.rows, lp.n_rows) == (128, 144)
    assert lp.flop_multiple == 8 * 4 * 2  # 8 cycles x 4 slices x 2 polarity reads
    diff = dataclasses.replace(per, adc=AdcSpec(bits=6, read="differential"),
                               dac=DacSpec(bits=4))
    lp2 = layer_periphery_of("l", (3, 3, 16, 16), diff, 8, 8, True)
    assert lp2.flop_multiple == 2 * 2 * 4  # 2 passes (signed input) x 2 cycles x 4 slices
