"""Per-layer hardware unit counts: crossbars after re-packing, converters, S+A, multipliers.

Everything goes through the crossbar view (`crimp_jax.xbar.view`): a kernel is a (row, col)
matrix cut into tiles of rows_per_tile x C. Counts are plain Python ints. Without a mask they come
from the kernel shape alone, so abstract shapes (`jax.eval_shape(model.init, ...)`) suffice.

How a mask turns into logical tiles (one tile = one R x C array of one slice and one polarity
before multiplying by slices x polarities), per pruning kind:
  none       dense tiling; any mask is ignored.
  crimp      per column tile, a row (one input position) survives if any of that tile's C
             columns keeps a weight there; the surviving rows re-pack into
             ceil(rows_kept / rows_per_tile) tiles. Columns never move. Kernel-group and
             crossbar pruning are the shapes that make this exact. This is the row
             re-packing of `crimp_jax.prune.repack` (computed by it), so the pruning report
             and the cost model count the same tiles.
  unstructured  each column is compacted on its own (index-addressed inputs), so a column tile needs
             ceil(max nonzeros of its columns / R) tiles, plus one data-alignment unit per
             physical crossbar of every layer that has a mask (the index buffer and multiplexers
             that realign inputs and outputs; see components.json 'alignment_unit').
  filter     rows with no weight at all and columns with no weight at all are removed from the
             whole matrix, which is re-tiled densely: ceil(kept_rows / rows_per_tile) x
             ceil(kept_cols / C). No alignment units (the structure is static).
The unstructured and filter counts differ from `crimp_jax.prune.repack`'s 'unstructured' and
'filter' schemes by definition (see their docstrings); dense tiles and tiles -> physical arrays
are `crimp_jax.xbar.view.tile_geometry` / `crimp_jax.xbar.counts.physical_arrays`.

Units per physical crossbar (ISAAC organisation, 128x128 arrays): R one-bit DACs (one per row),
C sample-and-holds (one per column), ceil(C / adc_columns) ADCs (columns share an ADC, ISAAC:
128 -> 1). Shift-and-add units: ceil(ADCs / adcs_per_shift_add) per layer (ISAAC: 8 ADCs and
4 S+A per IMA -> 2). A layer with non-power-of-two ('float') scales needs one multiplier per kept
output column to apply them; power-of-two scales reuse the S+A shifters and need none.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from crimp_jax.prune.repack import rows_kept_per_col_tile
from crimp_jax.utils.blocks import check_choice, check_int
from crimp_jax.xbar.config import xbar_spec
from crimp_jax.xbar.counts import physical_arrays
from crimp_jax.xbar.view import kernel_to_matrix, tile_geometry

PRUNING_KINDS = ("crimp", "unstructured", "filter", "none")
SCALE_KINDS = ("po2", "float")
MULTIPLIER_KINDS = {"fp32": "fp32_mult", "int32": "int32_mult", "int8": "int8_mult"}
BASE_COMPONENTS = ("crossbar", "adc", "dac", "sample_hold", "shift_add", "alignment_unit")


@dataclasses.dataclass(frozen=True)
class CountOptions:
    """Organisation choices of the cost model (the `cost` config block minus the figures).

    Attributes:
      adc_columns: crossbar columns that share one ADC (ISAAC: 128, one ADC per crossbar);
        Monte Carlo chips draw one gain/offset error per shared ADC (adc.gain_std).
      adcs_per_shift_add: ADCs served by one shift-and-add unit (ISAAC: 8 ADCs / 4 S+A = 2).
      multiplier: unit that applies a non-power-of-two scale ('fp32' | 'int32' | 'int8').
    """

    adc_columns: int = 128
    adcs_per_shift_add: int = 2
    multiplier: str = "fp32"

    def __post_init__(self):
        for name in ("adc_columns", "adcs_per_shift_add"):
            check_int(f"cost.{name}", getattr(self, name), 1)
        check_choice("cost.multiplier", self.multiplier, sorted(MULTIPLIER_KINDS))


def _check_kind(value, accepted, what):
    if value not in accepted:
        raise ValueError(f"{what}={value!r}: expected one of {list(accepted)}")


def crimp_tiles_per_col_tile(mask, spec):
    """(n_col_tiles,) int32: tiles each column tile needs after CRIMP re-packing.

    mask: kernel-shaped, nonzero = kept. Traceable (jit-able). This is the row re-packing of
    `crimp_jax.prune.repack` (its 'crimp' scheme: `tiles_after`), per column tile:
    ceil(rows_kept_per_col_tile / rows_per_tile).
    """
    g = tile_geometry(mask.shape, spec)
    return -(-rows_kept_per_col_tile(jnp.asarray(mask) != 0, spec) // g.rows_per_tile)


def unstructured_tiles_per_col_tile(mask, spec):
    """(n_col_tiles,) int32: tiles per column tile when every column is compacted on its own.

    Not the same count as `crimp_jax.prune.repack`'s 'unstructured' scheme, on purpose:
      here       each column keeps only its own nonzeros, packed to the top (per-cell input
                 indexing), so a column tile needs ceil(max nonzeros of its columns / R);
                 R, not rows_per_tile, since compacted columns no longer keep whole channels.
      repack     rows are packed per column tile (a row survives if any column of the tile
                 keeps a weight there), i.e. ceil(rows_kept / rows_per_tile) = the CRIMP
                 count, with index entries per packed row as its alignment figure.
    Column compaction is the most favourable packing of unstructured pruning (never more tiles
    than row packing), so it is the fair reference for the cost ratios; its price is the
    alignment units counted in `layer_counts`.
    """
    spec = xbar_spec(spec)
    g = tile_geometry(mask.shape, spec)
    nnz = jnp.sum(kernel_to_matrix(jnp.asarray(mask) != 0), axis=0)  # (col,)
    nnz = jnp.pad(nnz, (0, g.n_col_tiles * g.cols_per_tile - g.n_cols))
    longest = jnp.max(nnz.reshape(g.n_col_tiles, g.cols_per_tile), axis=1)
    return -(-longest // spec.rows)


def filter_tiles(mask, spec) -> int:
    """Tiles after removing all-zero rows and columns of the whole matrix and re-tiling.

    Not `crimp_jax.prune.repack`'s 'filter' scheme: that one re-packs the kept columns per row
    tile in place (rows stay, outputs need re-ordering entries); this one models the network
    rebuilt thinner (whole filters and the input rows they feed removed), which needs no
    alignment hardware.
    """
    spec = xbar_spec(spec)
    g = tile_geometry(mask.shape, spec)
    m = np.asarray(kernel_to_matrix(jnp.asarray(mask) != 0))
    rows, cols = int(m.any(axis=1).sum()), int(m.any(axis=0).sum())
    return math.ceil(rows / g.rows_per_tile) * math.ceil(cols / spec.cols)


def kept_columns(mask, n_cols: int) -> int:
    """Output columns that keep at least one weight (they still need their scale applied)."""
    if mask is None:
        return n_cols
    return int(np.asarray(kernel_to_matrix(jnp.asarray(mask) != 0)).any(axis=0).sum())


def layer_counts(kernel_shape, spec, weight_bits: int, mask=None, *, pruning: str = "crimp",
                 scale: str = "po2", options: CountOptions | None = None) -> dict:
    """Unit counts of one layer of `weight_bits`-bit weights (its quantization bit width: it
    sets the slices, hence the physical crossbars, per tile).

    Returns {'dense_tiles', 'tiles' (logical, after re-packing), 'kept_columns',
    'counts': {component name: number of physical units}}. The component names are those of
    components.json: crossbar, adc, dac, sample_hold, shift_add, alignment_unit and, for
    scale='float', the multiplier kind (e.g. fp32_mult).
    """
    spec = xbar_spec(spec)
    options = options or CountOptions()
    _check_kind(pruning, PRUNING_KINDS, "pruning")
    _check_kind(scale, SCALE_KINDS, "scale")
    g = tile_geometry(kernel_shape, spec)
    if mask is not None and tuple(mask.shape) != tuple(g.kernel_shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match kernel {g.kernel_shape}")
    if pruning == "none" or mask is None:
        tiles = g.n_tiles
    elif pruning == "crimp":
        tiles = int(np.sum(np.asarray(crimp_tiles_per_col_tile(mask, spec))))
    elif pruning == "unstructured":
        tiles = int(np.sum(np.asarray(unstructured_tiles_per_col_tile(mask, spec))))
    else:
        tiles = filter_tiles(mask, spec)
    crossbars = physical_arrays(tiles, spec, weight_bits)
    adcs = crossbars * math.ceil(spec.cols / options.adc_columns)
    counts = {
        "crossbar": crossbars,
        "adc": adcs,
        "dac": crossbars * spec.rows,
        "sample_hold": crossbars * spec.cols,
        "shift_add": math.ceil(adcs / options.adcs_per_shift_add),
        # Alignment hardware belongs to every crossbar of a layer the unstructured method prunes.
        "alignment_unit": crossbars if (pruning == "unstructured" and mask is not None) else 0,
    }
    cols = kept_columns(None if pruning == "none" else mask, g.n_cols)
    if scale == "float":
        counts[MULTIPLIER_KINDS[options.multiplier]] = cols if tiles else 0
    return {"dense_tiles": g.n_tiles, "tiles": tiles, "kept_columns": cols, "counts": counts}
