"""Pruning groups of a kernel, all defined through the crossbar view (`to_crossbar`).

Two group kinds (docs/method.md section 3):
  crossbar group  one tile, (row_tile, col_tile): `to_crossbar(kernel, spec)`, reduced over
                  (xrow, xcol).
  kernel group    the k*k rows of one input channel within one column tile, i.e. all C output
                  columns of that tile: (cin, col_tile). These are exactly the tiles of a
                  (k*k) x C crossbar, so they come from `to_crossbar(kernel, group_spec(...))`
                  with axes (cin, col_tile, kpos, xcol), kpos = i*kw + j. For a Dense kernel
                  k*k = 1 and a group is one row within a column tile.

Score of a group = L2 norm / sqrt(size), size = number of real (unpadded) entries: the RMS of
the group, comparable across layers and across edge tiles of different sizes.
Sizes are static numpy arrays computed from the geometry alone.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from crimp_jax.xbar.config import XbarSpec, xbar_spec
from crimp_jax.xbar.view import TileGeometry, from_crossbar, tile_geometry, to_crossbar


def group_spec(kernel_shape, spec: XbarSpec | dict) -> XbarSpec:
    """Crossbar spec whose tiles are the kernel groups: k*k rows x C columns, not aligned."""
    spec = xbar_spec(spec)
    k2 = tile_geometry(kernel_shape, dataclasses.replace(spec, channel_aligned=False)).k2
    return dataclasses.replace(spec, rows=k2, channel_aligned=False)


def _edge_sizes(n: int, per_tile: int, n_tiles: int) -> np.ndarray:
    """Real entries along one axis of each tile: per_tile, except the (padded) last one."""
    return np.minimum(per_tile, n - per_tile * np.arange(n_tiles)).astype(np.int64)


def tile_sizes(geom: TileGeometry) -> np.ndarray:
    """(row_tile, col_tile) -> real (unpadded) weights in that tile."""
    rows = _edge_sizes(geom.n_rows, geom.rows_per_tile, geom.n_row_tiles)
    cols = _edge_sizes(geom.n_cols, geom.cols_per_tile, geom.n_col_tiles)
    return rows[:, None] * cols[None, :]


def kernel_group_sizes(kernel_shape, spec: XbarSpec | dict) -> np.ndarray:
    """(cin, col_tile) -> real weights in that kernel group (k*k times real columns)."""
    return tile_sizes(tile_geometry(kernel_shape, group_spec(kernel_shape, spec)))


def _rms(tiles, sizes):
    """Tiles (a, b, x, y) and real sizes (a, b) -> L2 / sqrt(size) over (x, y)."""
    sq = jnp.sum(jnp.square(tiles.astype(jnp.float32)), axis=(2, 3))
    return jnp.sqrt(sq / jnp.asarray(sizes, jnp.float32))


def tile_scores(kernel, spec: XbarSpec | dict):
    """Crossbar-group scores, shape (row_tile, col_tile)."""
    geom = tile_geometry(kernel.shape, spec)
    return _rms(to_crossbar(kernel, spec), tile_sizes(geom))


def kernel_group_sums(kernel, spec: XbarSpec | dict):
    """Sums over each kernel group, shape (cin, col_tile) (e.g. of a 0/1 mask: live sizes)."""
    return jnp.sum(to_crossbar(kernel, group_spec(kernel.shape, spec)), axis=(2, 3))


def kernel_group_scores(kernel, spec: XbarSpec | dict, sizes=None):
    """Kernel-group scores, shape (cin, col_tile); `sizes` overrides the real group sizes."""
    sizes = kernel_group_sizes(kernel.shape, spec) if sizes is None else sizes
    gspec = group_spec(kernel.shape, spec)
    sq = jnp.sum(jnp.square(to_crossbar(kernel, gspec).astype(jnp.float32)), axis=(2, 3))
    sizes = jnp.asarray(sizes, jnp.float32)
    return jnp.sqrt(sq / jnp.maximum(sizes, 1.0))


def tile_keep_to_mask(tile_keep, kernel_shape, spec: XbarSpec | dict):
    """(row_tile, col_tile) 0/1 -> float32 mask of `kernel_shape` (padding dropped)."""
    geom = tile_geometry(kernel_shape, spec)
    tiles = jnp.broadcast_to(jnp.asarray(tile_keep, jnp.float32)[:, :, None, None],
                             (geom.n_row_tiles, geom.n_col_tiles, geom.rows_per_tile,
                              geom.cols_per_tile))
    return from_crossbar(tiles, kernel_shape, spec)


def group_keep_to_mask(group_keep, kernel_shape, spec: XbarSpec | dict):
    """(cin, col_tile) 0/1 -> float32 mask of `kernel_shape` (padding dropped)."""
    gspec = group_spec(kernel_shape, spec)
    return tile_keep_to_mask(group_keep, kernel_shape, gspec)


def tiles_in_use(mask, spec: XbarSpec | dict):
    """(row_tile, col_tile) bool: the tile holds at least one kept weight."""
    return jnp.any(to_crossbar(mask, spec) != 0, axis=(2, 3))


def kernel_groups_in_use(mask, spec: XbarSpec | dict):
    """(cin, col_tile) bool: the kernel group holds at least one kept weight."""
    return jnp.any(to_crossbar(mask, group_spec(mask.shape, spec)) != 0, axis=(2, 3))
