"""Crossbar view: row order, to/from identity, tile geometry, VGG-16 tile counts."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.models import build_network
from crimp_jax.utils.paths import kernel_paths
from crimp_jax.xbar.config import XbarSpec
from crimp_jax.xbar.counts import arrays_per_tile, dense_tile_counts, physical_arrays
from crimp_jax.xbar.view import from_crossbar, tile_geometry, to_crossbar


def test_row_order_is_cin_major_then_kernel_position():
    kernel = jnp.arange(3 * 3 * 4 * 6, dtype=jnp.float32).reshape(3, 3, 4, 6)
    tiles = np.asarray(to_crossbar(kernel, XbarSpec(rows=8, cols=4)))
    chex.assert_shape(tiles, (5, 2, 8, 4))
    k = np.asarray(kernel)
    for cin in range(4):
        for i in range(3):
            for j in range(3):
                row = cin * 9 + i * 3 + j
                for cout in range(6):
                    assert tiles[row // 8, cout // 4, row % 8, cout % 4] == k[i, j, cin, cout]
    # Padding: the last row tile holds rows 32..35 only, the last column tile columns 4, 5.
    assert np.all(tiles[4, :, 4:, :] == 0) and np.all(tiles[:, 1, :, 2:] == 0)


@pytest.mark.parametrize("shape", [(3, 3, 4, 6), (10, 6), (3, 3, 3, 130)])
@pytest.mark.parametrize("rows,cols,aligned", [(8, 4, False), (20, 4, True), (128, 128, True)])
def test_to_from_crossbar_identity(shape, rows, cols, aligned):
    spec = XbarSpec(rows=rows, cols=cols, channel_aligned=aligned)
    kernel = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    back = from_crossbar(to_crossbar(kernel, spec), shape, spec)
    chex.assert_trees_all_equal(back, kernel)


def test_tile_geometry_golden():
    g = tile_geometry((3, 3, 4, 6), XbarSpec(rows=8, cols=4))
    assert (g.rows_per_tile, g.n_row_tiles, g.n_col_tiles, g.n_tiles) == (8, 5, 2, 10)
    g = tile_geometry((3, 3, 4, 6), XbarSpec(rows=18, cols=4, channel_aligned=True))
    assert (g.rows_per_tile, g.channels_per_tile, g.n_tiles) == (18, 2, 4)
    g = tile_geometry((3, 3, 4, 6), XbarSpec(rows=20, cols=4, channel_aligned=True))
    assert (g.rows_per_tile, g.n_row_tiles) == (18, 2)  # 2 unused physical rows per tile
    with pytest.raises(ValueError, match=r"kh\*kw=9 <= xbar.rows=8"):
        tile_geometry((3, 3, 4, 6), XbarSpec(rows=8, cols=4, channel_aligned=True))


def test_vgg16_dense_tiles_on_128x128():
    params = build_network("vgg16").abstract_variables()
    # One cell per weight (8-bit cells for 8-bit weights), no polarity copies.
    spec = XbarSpec(rows=128, cols=128, bits_per_cell=8, differential=False)
    counts = dense_tile_counts(params["params"], spec)
    expected = {f"conv{i}/conv/kernel": n for i, n in enumerate(
        [1, 5, 5, 9, 18, 36, 36, 72, 144, 144, 144, 144, 144])}
    expected["fc/kernel"] = 4  # 512 -> 10: ceil(512/128) * ceil(10/128)
    assert counts == expected
    assert sum(counts.values()) == 906
    assert arrays_per_tile(spec, 8) == 1 and physical_arrays(906, spec, 8) == 906
    # Default cells: 8-bit weights, 2-bit cells, differential: 4 slices x 2 polarities;
    # 4-bit weights: 2 slices x 2 polarities.
    assert physical_arrays(906, XbarSpec(), 8) == 906 * 8
    assert physical_arrays(906, XbarSpec(), 4) == 906 * 4
    assert len(kernel_paths(params["params"])) == 14
