"""One layer on one chip: program integer weights into cells with non-idealities, read it back.

Layout taken: a kernel `q` (HWIO conv or (in, out) Dense) of integer-valued floats. Internally it
is the crossbar view's layer matrix (`kernel_to_matrix`, row = cin*kh*kw + i*kw + j) cut into
row tiles of `rows_per_tile` rows (`tile_geometry`), with cell axes in front:

  cells  (slice, polarity, row_tile, xrow, col)        col = col_tile * C + xcol

A physical column is (row_tile, col) of one slice and polarity. Columns are not padded to whole
column tiles: padding is not a cell, and for narrow layers (16 output channels on 128-column
crossbars) it would multiply the work 8x. Units are levels (see `config.py`): a cell at level l
with no non-ideality reads exactly l. The result goes back through `matrix_to_kernel`.

Which cells are programmed. A crossbar row whose mask is zero across every column of its tile
(the C columns of its column tile) is removed by re-packing (kernel-group pruning) or belongs to
a pruned crossbar (all rows gone): it is never programmed, so it contributes exactly nothing,
faults included. Cells of surviving rows are programmed even where their weight is zero (a
level-0 cell: G_min, variation and faults apply). Zero padding at tile edges is not a cell.
Compensation uses the logical tile's column as the physical column (re-packing only changes
which surviving rows share a column).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp

from crimp_jax.variation.config import VariationSpec
from crimp_jax.variation.stages import Draw, run_stages
from crimp_jax.xbar.cells import max_level, place_values, slice_weights, storage_offset
from crimp_jax.xbar.config import XbarSpec
from crimp_jax.xbar.view import kernel_to_matrix, matrix_to_kernel, tile_geometry


def cell_levels(q_tiles, spec: XbarSpec, vspec: VariationSpec, weight_bits: int):
    """Tiles (...) of `weight_bits`-bit weights -> (levels (slice, polarity, ...), place values,
    L, offset).

    'cell' mode slices bits (`xbar.cells`); 'weight' mode keeps one cell per weight and polarity
    holding the whole magnitude (L = 2^(b-1) - 1, or 2^b - 1 with offset storage).
    """
    if vspec.mode == "cell":
        return (slice_weights(q_tiles, spec, weight_bits), place_values(spec, weight_bits),
                max_level(spec), storage_offset(spec, weight_bits))
    q = jnp.round(jax.lax.stop_gradient(q_tiles))
    one = jnp.ones((1,), jnp.float32)
    if spec.differential:
        levels = jnp.stack([jnp.maximum(q, 0), jnp.maximum(-q, 0)])[None]
        return levels, one, 2 ** (weight_bits - 1) - 1, 0
    offset = 2 ** (weight_bits - 1)
    return (q + offset)[None, None], one, 2 ** weight_bits - 1, offset


def row_tiles(kernel, spec: XbarSpec):
    """Kernel -> (row_tile, xrow, col): the layer matrix with rows cut into tiles (zero-padded)."""
    g = tile_geometry(kernel.shape, spec)
    m = jnp.pad(kernel_to_matrix(kernel), ((0, g.n_row_tiles * g.rows_per_tile - g.n_rows), (0, 0)))
    return m.reshape(g.n_row_tiles, g.rows_per_tile, g.n_cols)


def from_row_tiles(tiles, kernel_shape, spec: XbarSpec):
    """Inverse of `row_tiles` (row padding dropped)."""
    g = tile_geometry(kernel_shape, spec)
    return matrix_to_kernel(tiles.reshape(-1, g.n_cols)[: g.n_rows], kernel_shape)


def programmed_cells(kernel_shape, spec: XbarSpec, mask=None):
    """Bool (row_tile, xrow, col): cells that exist and are programmed (see module docstring)."""
    g = tile_geometry(kernel_shape, spec)
    valid = row_tiles(jnp.ones(kernel_shape, jnp.float32), spec) > 0
    if mask is None:
        return valid
    used = row_tiles((mask != 0).astype(jnp.float32), spec)
    used = jnp.pad(used, ((0, 0), (0, 0), (0, g.n_col_tiles * g.cols_per_tile - g.n_cols)))
    used = used.reshape(g.n_row_tiles, g.rows_per_tile, g.n_col_tiles, g.cols_per_tile)
    row_kept = jnp.any(used > 0, axis=-1)  # (row_tile, xrow, col_tile)
    prog = jnp.repeat(row_kept, g.cols_per_tile, axis=-1)[..., : g.n_cols]
    return prog & valid


class CellRead(NamedTuple):
    """One chip's read-out of one layer's cells (axes (slice, polarity, row_tile, xrow, col))."""

    values: jnp.ndarray  # (raw - c) * programmed: what the periphery reads, in level units
    levels: jnp.ndarray  # intended levels
    mult: jnp.ndarray  # straight-through factor of each working cell (`stages.Cells`)
    ok: jnp.ndarray  # not stuck
    place: jnp.ndarray  # (slice,) place values
    offset: int  # offset-storage constant (0 for differential)
    lmax: int  # top level L
    prog: jnp.ndarray  # (row_tile, xrow, col) programmed cells


def layer_cells(q, key, spec: XbarSpec, vspec: VariationSpec, weight_bits: int, mask=None,
                knobs: Mapping | None = None, read_key=None) -> CellRead:
    """One chip's cells of one layer after every active device stage (`stages.STAGES`).

    Args: as `layer_effective`. With no active stage (an ideal chip) no random number is drawn
    and `values` are the intended levels.
    """
    q = jax.lax.stop_gradient(jnp.asarray(q, jnp.float32))
    if mask is not None:
        q = q * mask
    prog = programmed_cells(q.shape, spec, mask)
    levels, place, lmax, offset = cell_levels(row_tiles(q, spec), spec, vspec, weight_bits)
    c = 0.0 if vspec.on_off_ratio == 0 else lmax / (vspec.on_off_ratio - 1.0)
    d = Draw(key, vspec, c, lmax, prog[None, None], dict(knobs or {}), read_key, spec.cols)
    cells = run_stages(levels, d)  # no active stage: the intended levels
    values = (cells.raw - c) * prog[None, None]  # the periphery subtracts the nominal G_min
    return CellRead(values, levels, cells.mult, cells.ok, place, offset, lmax, prog)


def layer_effective(q, key, spec: XbarSpec, vspec: VariationSpec, weight_bits: int, mask=None,
                    knobs: Mapping | None = None, read_key=None):
    """One chip's read-back of one layer: (effective integer kernel, multiplicative ratio).

    Args:
      q: integer-valued kernel of `weight_bits`-bit levels (no gradient is taken here).
      key: this chip's key for this layer; write variation and faults come from it.
      weight_bits: the layer's quantization bit width: how many cells (slices) a weight takes.
      mask: optional 0/1 kernel-shaped pruning mask (q is multiplied by it).
      knobs: optional {name: traced scalar} overriding `vspec` fields (`variation.knobs`:
        sigma, read_time, wire_ratio, ...): one compiled program for a sweep or a sigma ramp.
      read_key: key of the read-noise draw (per inference); defaults to one derived from `key`.

    Returns:
      eff: kernel-shaped float32, sum_s 2^(s*bpc) (v+_s - v-_s) with v the compensated read-out.
      ratio: kernel-shaped, the part of eff / q that scales with q (slice factors weighted by the
        weight's own levels, faults excluded); 1 where q == 0. eff - q * ratio is the additive
        part (faults, G_min leakage, additive noise). Used for the straight-through gradient.
    """
    cells = layer_cells(q, key, spec, vspec, weight_bits, mask, knobs, read_key)
    levels, mult, ok = cells.levels, cells.mult, cells.ok
    shape = levels.shape
    prog, offset = cells.prog[None, None], cells.offset
    value, place = cells.values, cells.place
    pv = place.reshape((-1,) + (1,) * (len(shape) - 1))
    per_pol = jnp.sum(value * pv, axis=0)  # (polarity, row_tile, xrow, col)
    if spec.differential:
        eff_t = per_pol[0] - per_pol[1]
        mag = jnp.sum(levels * pv, axis=(0, 1))  # |q|: one polarity is all zero
        scaled = jnp.sum(levels * mult * ok * pv, axis=(0, 1))
        ratio_t = jnp.where(mag > 0, scaled / jnp.where(mag > 0, mag, 1.0), 1.0)
    else:
        eff_t = per_pol[0] - offset * prog[0, 0]
        ratio_t = jnp.ones_like(eff_t)
    return from_row_tiles(eff_t, q.shape, spec), from_row_tiles(ratio_t, q.shape, spec)

