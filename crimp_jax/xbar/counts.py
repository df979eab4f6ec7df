"""Static crossbar counts of dense layers: logical tiles and physical arrays.

Pure Python over kernel *shapes*, so it runs on `jax.eval_shape` output (ShapeDtypeStruct
leaves) without materialising any weight. A logical tile is one rows_per_tile x C block of a
layer matrix (see `crimp_jax.xbar.view`); on the chip it occupies
`num_slices(spec, weight_bits) * polarity_copies(spec)` physical crossbars (one per weight slice and per
polarity array of a differential pair).
"""

from __future__ import annotations

from typing import Mapping

from crimp_jax.utils.paths import flatten, kernel_paths
from crimp_jax.xbar.config import XbarSpec, num_slices, polarity_copies, xbar_spec
from crimp_jax.xbar.view import tile_geometry


def arrays_per_tile(spec: XbarSpec | dict, weight_bits: int) -> int:
    """Physical crossbars one logical tile of `weight_bits`-bit weights occupies: slices x
    polarity copies."""
    spec = xbar_spec(spec)
    return num_slices(spec, weight_bits) * polarity_copies(spec)


def dense_tile_counts(params: Mapping, spec: XbarSpec | dict, paths=None) -> dict:
    """{kernel path: logical tiles of the unpruned layer} for `paths` (default: every kernel).

    `params` may hold arrays or ShapeDtypeStructs (e.g. from `jax.eval_shape(model.init, ...)`).
    """
    flat = flatten(params)
    paths = kernel_paths(params) if paths is None else list(paths)
    return {p: tile_geometry(flat[p].shape, spec).n_tiles for p in paths}


def physical_arrays(n_tiles: int, spec: XbarSpec | dict, weight_bits: int) -> int:
    """Physical crossbars for `n_tiles` logical tiles (x num_slices x polarity_copies)."""
    return n_tiles * arrays_per_tile(spec, weight_bits)
