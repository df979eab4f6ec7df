"""`to_crossbar` / `from_crossbar`: the one layout mapping from layer kernels to crossbar tiles.

Axis glossary (names used throughout crimp_jax):
  kh, kw      kernel height and width (k*k = kh*kw kernel positions)
  cin, cout   input and output channels (Flax HWIO conv kernels: (kh, kw, cin, cout))
  row, col    rows/columns of the layer matrix: row = cin*kh*kw + i*kw + j, col = cout
  row_tile    index of a crossbar along the rows (inputs), n_row_tiles of them
  col_tile    index of a crossbar along the columns (outputs), n_col_tiles of them
  xrow, xcol  row/column inside one crossbar (xrow < rows_per_tile <= R, xcol < C)

A Dense kernel (in, out) is already a matrix (kh = kw = 1). The matrix is cut into tiles of
`rows_per_tile` x C, zero-padded at the bottom and right edges. With `channel_aligned`,
rows_per_tile = floor(R / k^2) * k^2 so the k*k rows of one input channel stay in one tile;
otherwise rows_per_tile = R. Tiles are returned with shape
(n_row_tiles, n_col_tiles, rows_per_tile, C): the physical rows a tile leaves unused
(R - rows_per_tile) hold no weights and are not materialised.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from crimp_jax.xbar.config import XbarSpec, xbar_spec


@dataclasses.dataclass(frozen=True)
class TileGeometry:
    """How one kernel maps onto crossbars (all plain Python ints: usable under `eval_shape`)."""

    kernel_shape: tuple
    k2: int  # kernel positions per input channel (kh*kw; 1 for Dense)
    n_rows: int  # matrix rows = cin*k2
    n_cols: int  # matrix columns = cout
    rows_per_tile: int
    cols_per_tile: int
    n_row_tiles: int
    n_col_tiles: int

    @property
    def n_tiles(self) -> int:
        return self.n_row_tiles * self.n_col_tiles

    @property
    def channels_per_tile(self) -> int:
        """Whole input channels per row tile (channel-aligned tiling keeps this exact)."""
        return self.rows_per_tile // self.k2


def _kernel_dims(shape) -> tuple[int, int, int, int]:
    if len(shape) == 4:
        return tuple(int(d) for d in shape)  # kh, kw, cin, cout
    if len(shape) == 2:
        return 1, 1, int(shape[0]), int(shape[1])
    raise ValueError(f"kernel shape {tuple(shape)}: expected HWIO conv (4-D) or Dense (2-D)")


def tile_geometry(kernel_shape, spec) -> TileGeometry:
    """Tile counts of a kernel of `kernel_shape` on crossbars described by `spec`."""
    spec = xbar_spec(spec)
    kh, kw, cin, cout = _kernel_dims(kernel_shape)
    k2 = kh * kw
    if spec.channel_aligned:
        if k2 > spec.rows:
            raise ValueError(
                f"channel_aligned tiling needs kh*kw={k2} <= xbar.rows={spec.rows}")
        rows_per_tile = (spec.rows // k2) * k2
    else:
        rows_per_tile = spec.rows
    n_rows, n_cols = cin * k2, cout
    return TileGeometry(
        kernel_shape=tuple(int(d) for d in kernel_shape), k2=k2, n_rows=n_rows, n_cols=n_cols,
        rows_per_tile=rows_per_tile, cols_per_tile=spec.cols,
        n_row_tiles=math.ceil(n_rows / rows_per_tile), n_col_tiles=math.ceil(n_cols / spec.cols))


def kernel_to_matrix(kernel):
    """(kh, kw, cin, cout) or (in, out) -> (row, col) with row = cin*kh*kw + i*kw + j."""
    if kernel.ndim == 2:
        return kernel
    kh, kw, cin, cout = kernel.shape
    return jnp.transpose(kernel, (2, 0, 1, 3)).reshape(cin * kh * kw, cout)


def matrix_to_kernel(matrix, kernel_shape):
    """Inverse of `kernel_to_matrix`: (row, col) -> kernel of `kernel_shape`."""
    if len(kernel_shape) == 2:
        return matrix.reshape(kernel_shape)
    kh, kw, cin, cout = kernel_shape
    return jnp.transpose(matrix.reshape(cin, kh, kw, cout), (1, 2, 0, 3))


def to_crossbar(kernel, spec: XbarSpec | dict):
    """Kernel -> tiles (row_tile, col_tile, xrow, xcol), zero-padded at the edges."""
    g = tile_geometry(kernel.shape, spec)
    m = kernel_to_matrix(kernel)
    m = jnp.pad(m, ((0, g.n_row_tiles * g.rows_per_tile - g.n_rows),
                    (0, g.n_col_tiles * g.cols_per_tile - g.n_cols)))
    m = m.reshape(g.n_row_tiles, g.rows_per_tile, g.n_col_tiles, g.cols_per_tile)
    return jnp.transpose(m, (0, 2, 1, 3))


def from_crossbar(tiles, kernel_shape, spec: XbarSpec | dict):
    """Tiles (row_tile, col_tile, xrow, xcol) -> kernel of `kernel_shape` (padding dropped)."""
    g = tile_geometry(kernel_shape, spec)
    expected = (g.n_row_tiles, g.n_col_tiles, g.rows_per_tile, g.cols_per_tile)
    if tuple(tiles.shape[-4:]) != expected:
        raise ValueError(f"tiles shape {tuple(tiles.shape)} does not match {expected} "
                         f"for kernel {tuple(kernel_shape)}")
    m = jnp.transpose(tiles, (0, 2, 1, 3)).reshape(
        g.n_row_tiles * g.rows_per_tile, g.n_col_tiles * g.cols_per_tile)
    return matrix_to_kernel(m[: g.n_rows, : g.n_cols], kernel_shape)
