"""Re-packing counts, baselines at equal sparsity, and the report outputs."""

import json

import chex
import jax.numpy as jnp
import numpy as np

from crimp_jax.prune.baselines import filter_masks, magnitude_masks
from crimp_jax.prune.config import PruneSpec
from crimp_jax.prune.masks import crimp_masks
from crimp_jax.prune.repack import layer_hardware
from crimp_jax.prune.report import (
    compare_schemes,
    layer_table,
    markdown_table,
    plot_occupancy,
)
from crimp_jax.xbar.config import XbarSpec

SPEC = XbarSpec(rows=8, cols=4)


def test_row_repacking_counts_8x4():
    # Conv 3x3, Cin=4, Cout=6 on 8x4 (5 x 2 tiles). Keep: col tile 0 all channels but cin 1;
    # col tile 1 only cin 3 (rows 27..35).
    mask = np.zeros((3, 3, 4, 6), np.float32)
    mask[:, :, [0, 2, 3], 0:4] = 1
    mask[:, :, 3, 4:6] = 1
    hw = layer_hardware(jnp.asarray(mask), SPEC, "crimp", 8)
    # In place: col tile 0 uses row tiles 0..4 (row 8 is cin 0; rows 9..17 cin 1 are gone but
    # rows 18..23 are cin 2), col tile 1 uses row tiles 3, 4 -> 7 of 10.
    # Re-packed: ceil(27 / 8) + ceil(9 / 8) = 4 + 2 = 6.
    assert hw["tiles_dense"] == 10
    assert (int(hw["tiles_nonzero"]), int(hw["tiles_after"])) == (7, 6)
    assert (hw["arrays_dense"], int(hw["arrays_after"])) == (80, 48)


def _dense_kernel():
    # Dense (4, 6) on 8x4: one row tile (4 rows) x 2 col tiles. |w| = 1..24, row-major.
    return {"l": jnp.arange(1, 25, dtype=jnp.float32).reshape(4, 6) * jnp.array([1, -1] * 3)}


def test_unstructured_baseline_counts():
    masks = magnitude_masks(_dense_kernel(), 0.5)
    want = jnp.array([[0.0] * 6, [0.0] * 6, [1.0] * 6, [1.0] * 6])  # |w| <= 12 pruned
    chex.assert_trees_all_equal(masks["l"], want)
    hw = layer_hardware(masks["l"], SPEC, "unstructured", 8)
    # No tile is all-zero, so in place nothing is freed; with index buffers + input muxes
    # (one per kept row per col tile: 2 + 2) rows re-pack into 1 + 1 tiles.
    assert (int(hw["tiles_after"]), int(hw["tiles_after_aligned"])) == (2, 2)
    assert (int(hw["alignment_index_entries"]), int(hw["alignment_input_muxes"])) == (4, 4)
    assert hw["alignment_mux_fan_in"] == 4 and int(hw["alignment_output_reorder_entries"]) == 0


def test_filter_baseline_counts():
    # Column c holds |w| = c+1, c+7, c+13, c+19: lowest columns first; 12 weights = 3 columns.
    masks = filter_masks(_dense_kernel(), 0.5)
    want = jnp.asarray(np.repeat([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]], 4, axis=0))
    chex.assert_trees_all_equal(masks["l"], want)
    hw = layer_hardware(masks["l"], SPEC, "filter", 8)
    # Both column tiles still hold kept columns (3 | 4, 5); packed: ceil(3 / 4) = 1 tile, with
    # one output re-ordering entry per packed column.
    assert (int(hw["tiles_after"]), int(hw["tiles_after_aligned"])) == (2, 1)
    assert int(hw["alignment_output_reorder_entries"]) == 3 and hw["alignment_output_fan_in"] == 6
    assert int(hw["alignment_index_entries"]) == 0


def test_reports_table_markdown_png(tmp_path):
    kernels = {"conv/kernel": jnp.asarray(
        np.random.default_rng(0).normal(size=(3, 3, 4, 6)).astype(np.float32)),
        "fc/kernel": jnp.asarray(np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32))}
    masks = crimp_masks(kernels, SPEC, PruneSpec(target_sparsity=0.5, min_keep=0.0))
    tables = compare_schemes(kernels, masks, SPEC, 8, min_keep=0.0)
    rows = tables["crimp"]
    json.dumps(tables)  # JSON-able
    assert [r["layer"] for r in rows] == ["conv/kernel", "fc/kernel"]
    assert rows[0]["crossbar_groups"] == 10 and rows[0]["kernel_groups"] == 8
    assert rows[1]["kernel_groups"] == 16  # Dense: one group per row per col tile
    kept = sum(r["weights_kept"] for r in rows)
    # Each pass meets its budget (round(.5 * 264) = 132 pruned) or exceeds it by < one group.
    assert 264 - 132 - 32 - 36 < kept <= 264 - 132
    for scheme in ("unstructured", "filter"):  # equal sparsity (to within one filter)
        base = sum(r["weights_kept"] for r in tables[scheme])
        assert abs(base - kept) <= (36 if scheme == "filter" else 0)
    text = markdown_table(rows)
    assert text.splitlines()[0].startswith("| layer | shape | sparsity")
    assert "| total |" in text and "| conv/kernel | 3x3x4x6 |" in text
    png = plot_occupancy(tables, str(tmp_path / "occupancy.png"), "tiny")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert layer_table(masks, SPEC, 8)[0]["scheme"] == "crimp"
