"""IR drop: the voltage the row and column wires of a crossbar lose, as effective conductances.

One crossbar of R rows and C columns: row i is driven with v_i at its column-0 end, column j is
sensed at its row-(R-1) end at virtual ground, every wire segment between neighbouring cells
(and between the driver or the sense amplifier and the nearest cell) has resistance r, and
cell (i, j) of conductance g_ij joins row node (i, j) to column node (i, j). The network is
linear, so by superposition column j's current is exactly sum_i v_i G_ij for a fixed matrix G
(the effective conductances): whatever the inputs, the wires act as a change of the cells.

G is computed for every unit input at once (v = e_i) by `order` block Gauss-Seidel sweeps of
the nodal equations: each sweep solves every row wire exactly given the column voltages (one
tridiagonal system per row), then every column wire given the row voltages (one per column),
starting from column voltages of zero; order 0 is the ideal crossbar (G = g).
`closed_form_conductances` is the cheap alternative (O(cells), no solve): to first order in r,
with unit input on row i, cell (i, j) sees its row wire lose r * U_ij (U_ij = sum_{k<=j} of the
currents past segment k, sum_{m>=k} g_im) and its column wire raised by r * (R - i) g_ij, and
every other cell (k, j) of the column leaks r * g_ij (R - max(i, k)) g_kj back into its
grounded row; together G_ij ~ g_ij (1 - r (U_ij + T_ij)), T_ij = sum_k g_kj (R - max(i, k)).
It is used in the rational form g_ij / (1 + r (U_ij + T_ij)), which keeps G positive and is
far closer to the exact solve where the drop is large.
`tests/test_irdrop.py` checks both against an exact nodal-analysis solve (NumPy) over a grid
of wire-to-cell resistance ratios.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _tridiag(sub, diag, sup, rhs):
    """Solves tridiagonal systems along the last axis (batched over the leading axes)."""
    shape = jnp.broadcast_shapes(sub.shape, diag.shape, sup.shape, rhs.shape)
    b = [jnp.broadcast_to(a, shape) for a in (sub, diag, sup, rhs)]
    return jax.lax.linalg.tridiagonal_solve(b[0], b[1], b[2], b[3][..., None])[..., 0]


def effective_conductances(g, r, order: int, block: int = 8):
    """g (..., R, C) conductances of crossbars, r the wire segment resistance (in units of
    1/g; may be traced, and 0 is the ideal crossbar) -> (..., R, C) effective conductances
    (see module docstring). The unit inputs are solved `block` at a time (memory: `block` x the
    cells, not R x)."""
    if order == 0:
        return g
    wired = jnp.asarray(r) > 0
    r = jnp.where(wired, r, 1.0)  # no 1/0 in the solve; r = 0 returns g below
    rows = g.shape[-2]
    n = -(-rows // block)
    eye = jnp.eye(n * block, rows, dtype=g.dtype).reshape(n, block, rows)

    def solve(units):  # (block, R): unit inputs -> (..., block, C)
        return _sensed(g, r, order, units[:, :, None])

    out = jax.lax.map(solve, eye)  # (n, ..., block, C)
    out = jnp.moveaxis(out, 0, -3)  # (..., n, block, C)
    return jnp.where(wired, out.reshape(out.shape[:-3] + (n * block, out.shape[-1]))[..., :rows, :],
                     g)


def closed_form_conductances(g, r):
    """g (..., R, C), r (may be traced; 0: ideal wires) -> (..., R, C) effective conductances
    g / (1 + r (U + T)) (see module docstring): prefix and suffix sums only."""
    rows = g.shape[-2]
    past = jnp.flip(jnp.cumsum(jnp.flip(g, -1), -1), -1)  # sum_{m >= k} g_im
    u = jnp.cumsum(past, -1)  # row-wire drop per unit r
    below = (rows - jnp.arange(rows, dtype=g.dtype))[:, None]  # R - i: segments to the amp
    weighted = g * below
    t = below * jnp.cumsum(g, -2) + (jnp.sum(weighted, -2, keepdims=True)
                                     - jnp.cumsum(weighted, -2))
    return g / (1.0 + r * (u + t))


def _sensed(g, r, order, v):
    """Column currents (..., B, C) of crossbars g (..., R, C) driven by inputs v (B, R, 1)."""
    rows, cols = g.shape[-2:]
    w = 1.0 / r
    gb = g[..., None, :, :]  # (..., 1 = input, R, C)
    j, i = jnp.arange(cols), jnp.arange(rows)
    # row wires, along C: node j joins j - 1 (or the driver) and j + 1 (if any)
    r_diag = gb + w * (1.0 + (j < cols - 1))
    r_sub = jnp.where(j > 0, -w, 0.0).astype(g.dtype)
    r_sup = jnp.where(j < cols - 1, -w, 0.0).astype(g.dtype)
    # column wires, along R (solved transposed): node i joins i - 1 (if any) and i + 1 (or
    # the sense amplifier)
    gt = jnp.swapaxes(gb, -1, -2)  # (..., 1, C, R)
    c_diag = gt + w * (1.0 + (i > 0))
    c_sub = jnp.where(i > 0, -w, 0.0).astype(g.dtype)
    c_sup = jnp.where(i < rows - 1, -w, 0.0).astype(g.dtype)
    v_col = jnp.zeros(jnp.broadcast_shapes(gb.shape, v.shape), g.dtype)
    drive = v * w * (j == 0)  # the driver's current into node 0 of each row
    for _ in range(order):
        v_row = _tridiag(r_sub, r_diag, r_sup, gb * v_col + drive)
        v_col = jnp.swapaxes(_tridiag(c_sub, c_diag, c_sup, jnp.swapaxes(gb * v_row, -1, -2)),
                             -1, -2)
    return v_col[..., -1, :] * w  # sensed current per (input, column)
