"""Crossbars a pruned layer really needs, and the data-alignment hardware each scheme implies.

All counts are functions of a layer's 0/1 mask (kernel shape) and the crossbar spec, written
in jnp so they also run under `jit` / `eval_shape` (they return int32 scalars).

Re-packing [choice] (docs/method.md section 3):
  row re-packing     per column tile, the matrix rows that hold any kept weight in that column
                     tile are packed, in order, into ceil(rows_kept / rows_per_tile) tiles.
                     For CRIMP masks the kept rows are whole kernel groups (k*k rows of an
                     input channel), so each packed tile's input is a static list of whole
                     input channels and its columns never move: no alignment hardware. With
                     channel_aligned tiling a packed channel never straddles two crossbars.
                     For unstructured masks the kept rows are arbitrary single rows, so
                     packing them needs an index buffer entry and an input multiplexer per
                     packed row (the "data-aligning units" of irregular pruning).
  column re-packing  per row tile, the columns holding any kept weight are packed into
                     ceil(cols_kept / C) tiles. Output channels then sit at other columns, so
                     every packed column needs an output re-ordering entry (which output
                     channel its partial sum belongs to) before tiles are summed. (A network
                     physically rebuilt thinner, with the next layer's input rows removed too,
                     would not need it; we model in-place mapping of each layer.)
A tile is freed *without* any alignment hardware only if all its weights are pruned
(`tiles_nonzero` counts the ones that are not).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from crimp_jax.xbar.config import XbarSpec, xbar_spec
from crimp_jax.xbar.counts import arrays_per_tile
from crimp_jax.xbar.view import tile_geometry, to_crossbar

SCHEMES = ("crimp", "unstructured", "filter")


def _ceil_div(a, b: int):
    return (a + b - 1) // b


def tiles_nonzero(mask, spec: XbarSpec | dict):
    """Tiles holding at least one kept weight (what in-place mapping must still allocate)."""
    return jnp.sum(jnp.any(to_crossbar(mask, spec) != 0, axis=(2, 3))).astype(jnp.int32)


def rows_kept_per_col_tile(mask, spec: XbarSpec | dict):
    """(col_tile,) matrix rows holding any kept weight within that column tile."""
    row_used = jnp.any(to_crossbar(mask, spec) != 0, axis=3)  # (row_tile, col_tile, xrow)
    return jnp.sum(row_used, axis=(0, 2)).astype(jnp.int32)


def cols_kept_per_row_tile(mask, spec: XbarSpec | dict):
    """(row_tile,) matrix columns holding any kept weight within that row tile."""
    col_used = jnp.any(to_crossbar(mask, spec) != 0, axis=2)  # (row_tile, col_tile, xcol)
    return jnp.sum(col_used, axis=(1, 2)).astype(jnp.int32)


def tiles_row_repacked(mask, spec: XbarSpec | dict):
    """Tiles after row re-packing: sum over column tiles of ceil(rows_kept / rows_per_tile)."""
    geom = tile_geometry(mask.shape, spec)
    return jnp.sum(_ceil_div(rows_kept_per_col_tile(mask, spec), geom.rows_per_tile))


def tiles_col_repacked(mask, spec: XbarSpec | dict):
    """Tiles after column re-packing: sum over row tiles of ceil(cols_kept / C)."""
    geom = tile_geometry(mask.shape, spec)
    return jnp.sum(_ceil_div(cols_kept_per_row_tile(mask, spec), geom.cols_per_tile))


def layer_hardware(mask, spec: XbarSpec | dict, scheme: str, weight_bits: int) -> dict:
    """Counts for one pruned layer of `weight_bits`-bit weights under `scheme` ('crimp',
    'unstructured' or 'filter'); the weight bits set the slices per tile.

    Keys (int32 scalars unless noted):
      weights, weights_kept       real kernel entries, and those the mask keeps.
      tiles_dense                 logical tiles of the unpruned layer (python int).
      tiles_nonzero               tiles with any kept weight (in-place mapping, no alignment).
      tiles_after                 tiles the scheme allocates with *no* alignment hardware:
                                  crimp -> row re-packed (whole kernel groups, static inputs);
                                  unstructured, filter -> tiles_nonzero.
      tiles_after_aligned         tiles once the scheme's alignment hardware is paid for:
                                  crimp -> tiles_after; unstructured -> row re-packed;
                                  filter -> column re-packed.
      arrays_dense, arrays_after, arrays_after_aligned
                                  the same x num_slices x polarity_copies (physical crossbars).
      alignment_index_entries     index-buffer entries (one per packed physical row) needed to
                                  route arbitrary inputs to re-packed rows (unstructured only).
      alignment_input_muxes       input multiplexers, one per packed physical row (unstructured).
      alignment_mux_fan_in        inputs each of those multiplexers chooses from: the layer's
                                  matrix rows (python int; 0 where there are none).
      alignment_output_reorder_entries
                                  output re-ordering entries, one per packed physical column
                                  (filter only): maps the column's partial sum to its channel.
      alignment_output_fan_in     output channels each re-ordering entry chooses from (int).
    Alignment counts are per logical tile row/column (multiply by slices/polarities in the
    cost model if those are aligned separately).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r}: expected one of {SCHEMES}")
    spec = xbar_spec(spec)
    geom = tile_geometry(mask.shape, spec)
    mux_fan_in = geom.n_rows if scheme == "unstructured" else 0
    out_fan_in = geom.n_cols if scheme == "filter" else 0
    per_tile = arrays_per_tile(spec, weight_bits)
    return {
        "weights": geom.n_rows * geom.n_cols,
        "weight_bits": int(weight_bits),
        "tiles_dense": geom.n_tiles,
        "arrays_dense": geom.n_tiles * per_tile,
        "alignment_mux_fan_in": mux_fan_in,
        "alignment_output_fan_in": out_fan_in,
        **_layer_counts(mask, spec, scheme, int(weight_bits)),
    }


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _layer_counts(mask, spec: XbarSpec, scheme: str, weight_bits: int) -> dict:
    """The mask-dependent (int32) entries of `layer_hardware`."""
    per_tile = arrays_per_tile(spec, weight_bits)
    nonzero = tiles_nonzero(mask, spec)
    row_packed = tiles_row_repacked(mask, spec)
    zero = jnp.zeros((), jnp.int32)
    index_entries, out_entries = zero, zero
    if scheme == "crimp":
        after = aligned = row_packed
    elif scheme == "unstructured":
        after, aligned = nonzero, row_packed
        index_entries = jnp.sum(rows_kept_per_col_tile(mask, spec))
    else:
        after, aligned = nonzero, tiles_col_repacked(mask, spec)
        out_entries = jnp.sum(cols_kept_per_row_tile(mask, spec))
    return {
        "weights_kept": jnp.sum(mask != 0).astype(jnp.int32),
        "tiles_nonzero": nonzero,
        "tiles_after": after,
        "tiles_after_aligned": aligned,
        "arrays_after": after * per_tile,
        "arrays_after_aligned": aligned * per_tile,
        "alignment_index_entries": index_entries,
        "alignment_input_muxes": index_entries,
        "alignment_output_reorder_entries": out_entries,
    }
