"""IR drop as effective conductances (`crimp_jax.xbar.irdrop`) against an exact nodal-analysis
solve of the same resistive network, written here in NumPy."""

import numpy as np
import pytest

from crimp_jax.xbar.irdrop import closed_form_conductances, effective_conductances


def exact_output(g, r, v):
    """Column currents of a crossbar with wire segment resistance r: rows driven at their
    column-0 end with v, columns sensed at their last row at 0 V (dense KCL solve)."""
    rows, cols = g.shape
    n = rows * cols
    a = np.zeros((2 * n, 2 * n))
    b = np.zeros(2 * n)
    row = lambda i, j: i * cols + j  # noqa: E731
    col = lambda i, j: n + i * cols + j  # noqa: E731
    w = 1.0 / r
    for i in range(rows):
        for j in range(cols):
            p, q = row(i, j), col(i, j)
            # row node: from the left (driver at j = 0), to the right, through the cell
            a[p, p] += w + g[i, j]
            if j == 0:
                b[p] += w * v[i]
            else:
                a[p, row(i, j - 1)] -= w
            if j < cols - 1:
                a[p, p] += w
                a[p, row(i, j + 1)] -= w
            a[p, q] -= g[i, j]
            # column node: from above, down to the next node (or the sense amplifier)
            a[q, q] += g[i, j] + w
            a[q, p] -= g[i, j]
            if i > 0:
                a[q, q] += w
                a[q, col(i - 1, j)] -= w
            if i < rows - 1:
                a[q, col(i + 1, j)] -= w
    x = np.linalg.solve(a, b)
    return np.array([x[col(rows - 1, j)] * w for j in range(cols)])


# (rows, cols, wire-to-cell resistance ratio, largest error allowed at order 3): the error is
# relative to the largest ideal column current; what IR drop itself does there is printed by
# the test (16x8: 0.7%, 7%, 41% of the largest current at 1e-4, 1e-3, 1e-2; 32x32: 4.5%, 32%,
# 84%)
CASES = [(16, 8, 1e-4, 1e-4), (16, 8, 1e-3, 1e-4), (16, 8, 1e-2, 1e-3),
         (32, 32, 1e-4, 1e-4), (32, 32, 1e-3, 1e-4), (32, 32, 1e-2, 3e-2)]


@pytest.mark.parametrize("rows, cols, ratio, bound", CASES)
def test_effective_conductances_match_the_exact_solve(rows, cols, ratio, bound):
    """ratio: wire segment resistance x G_max (the on-state cell's conductance); random 2-bit
    cells and random inputs. The error falls with the order (block Gauss-Seidel sweeps) down
    to float32 rounding."""
    rng = np.random.default_rng(0)
    g = rng.integers(0, 4, (rows, cols)) / 3  # G_max = 1
    v = rng.uniform(0, 1, (2, rows))
    exact = np.stack([exact_output(g, ratio, vi) for vi in v])
    ideal = v @ g
    scale = np.abs(ideal).max()
    errs = []
    for order in range(4):
        geff = np.asarray(effective_conductances(np.asarray(g, np.float32), ratio, order),
                          np.float64)
        errs.append(np.abs(v @ geff - exact).max() / scale)
    print(f"{rows}x{cols} ratio {ratio:g}: IR drop {errs[0]:.3g}; error by order "
          + ", ".join(f"{e:.2g}" for e in errs[1:]))
    assert errs[0] == pytest.approx(np.abs(ideal - exact).max() / scale, rel=1e-4)
    assert errs[3] <= errs[1] < errs[0]
    assert errs[3] < bound


# (rows, cols, ratio, largest error allowed) of the closed form (measured: 16x8 2.0e-6, 1.3e-4;
# 32x32 1.5e-4, 6.6e-3; IR drop itself as above)
CLOSED_FORM_CASES = [(16, 8, 1e-4, 1e-5), (16, 8, 1e-3, 5e-4), (32, 32, 1e-4, 5e-4),
                     (32, 32, 1e-3, 1e-2)]


@pytest.mark.parametrize("rows, cols, ratio, bound", CLOSED_FORM_CASES)
def test_the_closed_form_is_close_to_the_exact_solve(rows, cols, ratio, bound):
    """`closed_form_conductances` (no solve) against the exact solve; far closer than one
    Gauss-Seidel sweep where the drop is large, and exact without wire resistance."""
    rng = np.random.default_rng(0)
    g = rng.integers(0, 4, (rows, cols)) / 3
    v = rng.uniform(0, 1, (2, rows))
    exact = np.stack([exact_output(g, ratio, vi) for vi in v])
    scale = np.abs(v @ g).max()
    g32 = np.asarray(g, np.float32)
    err = np.abs(v @ np.asarray(closed_form_conductances(g32, ratio), np.float64)
                 - exact).max() / scale
    one_sweep = np.abs(v @ np.asarray(effective_conductances(g32, ratio, 1), np.float64)
                       - exact).max() / scale
    print(f"{rows}x{cols} ratio {ratio:g}: closed form {err:.2g}, one sweep {one_sweep:.2g}")
    assert err < bound
    if rows == 32:
        assert err < one_sweep
    np.testing.assert_array_equal(np.asarray(closed_form_conductances(g32, 0.0)), g32)


def test_the_ir_drop_stage_reads_each_crossbar_with_its_effective_conductances():
    """A 2-layer-tile dense kernel on 16x8 crossbars (2 row tiles, 2 column crossbars, 4 slices,
    2 polarities): every crossbar's read-out is `effective_conductances` of its own cells."""
    import jax
    import jax.numpy as jnp

    from crimp_jax.variation import VariationSpec, layer_cells
    from crimp_jax.xbar import XbarSpec

    spec = XbarSpec(rows=16, cols=8)
    q = jnp.round(jax.random.uniform(jax.random.key(0), (32, 16), minval=-127, maxval=127))
    ideal = layer_cells(q, None, spec, VariationSpec(), 8)
    v = VariationSpec(wire_ratio=1e-3, ir_drop_order=3, compensation=False)
    read = layer_cells(q, jax.random.key(1), spec, v, 8)
    levels = np.asarray(ideal.values)  # (slice, polarity, row tile, 16, 16)
    got = np.asarray(read.values)
    lmax = 3
    for t in range(2):
        for half in range(2):
            cols = slice(8 * half, 8 * half + 8)
            want = effective_conductances(jnp.asarray(levels[:, :, t, :, cols]), 1e-3 / lmax, 3)
            np.testing.assert_allclose(got[:, :, t, :, cols], want, rtol=1e-5, atol=1e-6)
    assert np.all(got.sum(axis=3) < levels.sum(axis=3) + 1e-6)  # the wires only lose current
    assert not np.allclose(got, levels)
    closed = np.asarray(layer_cells(q, jax.random.key(1), spec, VariationSpec(
        wire_ratio=1e-3, ir_drop_model="closed_form", compensation=False), 8).values)
    want = closed_form_conductances(jnp.asarray(levels[:, :, 1, :, 8:]), 1e-3 / lmax)
    np.testing.assert_allclose(closed[:, :, 1, :, 8:], want, rtol=1e-5, atol=1e-6)
    # self-compensation reads the chip through its wires: each column's all-ones current
    # (the sum of its effective conductances) is brought back to the intended one, to within
    # the shift-and-add gains' rounding ('exact' gains: to float rounding)
    exact = np.asarray(layer_cells(q, jax.random.key(1), spec, VariationSpec(
        wire_ratio=1e-3, comp_form="exact"), 8).values)
    np.testing.assert_allclose(exact.sum(axis=3), levels.sum(axis=3), rtol=1e-5, atol=1e-4)
    assert np.abs(got.sum(axis=3) - levels.sum(axis=3)).max() > 1.0  # uncompensated: lost
