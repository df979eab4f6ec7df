"""CRIMP masks: golden masks, sparsity and crossbar counts on hand-made kernels."""

import logging

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.prune.config import PruneSpec, prune_spec
from crimp_jax.prune.groups import kernel_group_scores, tile_scores
from crimp_jax.prune.masks import crimp_prune, masks_sparsity, select_prunable
from crimp_jax.prune.repack import layer_hardware
from crimp_jax.xbar.config import XbarSpec

# Conv 3x3, Cin=4, Cout=6; the weight is constant within each kernel group (cin, col_tile):
# group RMS = |value|. Column tiles of 4 columns: cout 0..3 -> col tile 0, cout 4, 5 -> 1.
GROUP_VALUES = np.array([[4.0, 0.3],
                         [3.0, 0.9],
                         [0.1, 2.0],
                         [0.2, 0.6]], np.float32)
COL_TILE = np.array([0, 0, 0, 0, 1, 1])


def _group_kernel():
    return jnp.asarray(np.broadcast_to(GROUP_VALUES[:, COL_TILE][None, None], (3, 3, 4, 6)))


def _run(kernels, spec, cfg, target=None):
    return jax.jit(lambda ks: crimp_prune(ks, spec, cfg, target))(kernels)


def test_golden_channel_aligned_two_passes():
    # 18x4 channel-aligned crossbars: tile (row_tile, col_tile) holds channels {2rt, 2rt+1}.
    # Tile RMS: (0,0) sqrt((16+9)/2)=3.54 [72 w], (0,1) sqrt(.45)=.67 [36], (1,0) sqrt(.025)
    # =.16 [72], (1,1) sqrt(2.18)=1.48 [36]. 216 weights, target .5 -> budget 108.
    # Crossbar pass (fraction .5 -> 54): prune (1,0) (72 >= 54, stop).
    # Kernel pass, budget 108-72=36 over live groups: .3 (0,1) [18], .6 (3,1) [18] -> 36, stop.
    spec = XbarSpec(rows=18, cols=4, channel_aligned=True)
    cfg = PruneSpec(score_norm="none", target_sparsity=0.5, crossbar_fraction=0.5, min_keep=0.0)
    res = _run({"l": _group_kernel()}, spec, cfg)
    chex.assert_trees_all_equal(res.tile_keep["l"], jnp.array([[1.0, 1.0], [0.0, 1.0]]))
    chex.assert_trees_all_equal(res.group_keep["l"],
                                jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]))
    expected = np.zeros((3, 3, 4, 6), np.float32)
    expected[:, :, 0:2, 0:4] = 1.0
    expected[:, :, 1:3, 4:6] = 1.0
    chex.assert_trees_all_equal(res.masks["l"], jnp.asarray(expected))
    assert res.masks["l"].dtype == jnp.float32
    assert float(res.sparsity) == 0.5
    np.testing.assert_allclose(res.tile_threshold, np.sqrt(0.025), rtol=1e-6)
    np.testing.assert_allclose(res.group_threshold, 0.6, rtol=1e-6)
    hw = layer_hardware(res.masks["l"], spec, "crimp", 8)
    # Dense 4 tiles; in place (0,0), (0,1), (1,1) hold weights; re-packed: col tile 0 keeps
    # 18 rows (cin 0, 1) -> 1 tile, col tile 1 keeps 18 rows (cin 1, 2) -> 1 tile.
    assert (hw["tiles_dense"], int(hw["tiles_nonzero"]), int(hw["tiles_after"])) == (4, 3, 2)
    # Default cells: 4 slices x 2 polarities.
    assert (hw["arrays_dense"], int(hw["arrays_after"])) == (32, 16)
    assert int(hw["alignment_index_entries"]) == 0 and int(hw["weights_kept"]) == 108


def test_golden_crossbar_pass_not_aligned_8x4():
    # 8x4 crossbars, not aligned: 5 row tiles (8,8,8,8,4 rows) x 2 col tiles (4, 2 cols).
    # Tile (0,0) = cin 0 positions 0..7, cout 0..3 (32 weights) set to .2; tile (4,1) = cin 3
    # positions 5..8, cout 4, 5 (8 weights) set to .1; everything else 1.
    kernel = np.ones((3, 3, 4, 6), np.float32)
    pos = np.arange(9).reshape(3, 3)
    kernel[:, :, 0, 0:4][pos < 8] = 0.2
    kernel[:, :, 3, 4:6][pos >= 5] = 0.1
    expected = np.where(kernel < 1, 0.0, 1.0).astype(np.float32)
    spec = XbarSpec(rows=8, cols=4)
    cfg = PruneSpec(score_norm="none", target_sparsity=40 / 216, crossbar_fraction=1.0, min_keep=0.0)
    res = _run({"l": jnp.asarray(kernel)}, spec, cfg)
    want_tiles = np.ones((5, 2), np.float32)
    want_tiles[0, 0] = want_tiles[4, 1] = 0
    chex.assert_trees_all_equal(res.tile_keep["l"], jnp.asarray(want_tiles))
    chex.assert_trees_all_equal(res.masks["l"], jnp.asarray(expected))
    np.testing.assert_allclose(res.sparsity, 40 / 216, rtol=1e-6)
    hw = layer_hardware(res.masks["l"], spec, "crimp", 8)
    # Col tile 0 keeps rows 8..35 (28) -> 4 tiles; col tile 1 keeps rows 0..31 -> 4 tiles.
    assert (int(hw["tiles_nonzero"]), int(hw["tiles_after"])) == (8, 8)


def test_group_scores_are_rms_of_real_entries():
    spec = XbarSpec(rows=8, cols=4)
    kg = kernel_group_scores(_group_kernel(), spec)
    np.testing.assert_allclose(kg, np.abs(GROUP_VALUES), rtol=1e-6)  # padding not counted
    ts = tile_scores(jnp.ones((3, 3, 4, 6)), spec)
    np.testing.assert_allclose(ts, np.ones((5, 2)), rtol=1e-6)  # edge tiles too


def _two_dense_layers():
    # Dense (2, 4) each: kernel group = one row (size 4). A rows 1, 2; B rows 10, 20.
    a = jnp.array([[1.0] * 4, [2.0] * 4])
    return {"a/kernel": a, "b/kernel": 10 * a}


def test_min_keep_protects_each_layer():
    spec = XbarSpec(rows=8, cols=4)
    ks = _two_dense_layers()
    # Without protection the global order prunes both rows of A (4 + 4 = budget 8).
    res = _run(ks, spec, PruneSpec(score_norm="none", target_sparsity=0.5, crossbar_fraction=0.0, min_keep=0.0))
    chex.assert_trees_all_equal(res.masks["a/kernel"], jnp.zeros((2, 4)))
    chex.assert_trees_all_equal(res.masks["b/kernel"], jnp.ones((2, 4)))
    # min_keep .5 protects A's row 1 and B's row 1: prune A row 0, then B row 0.
    res = _run(ks, spec, PruneSpec(score_norm="none", target_sparsity=0.5, crossbar_fraction=0.0, min_keep=0.5))
    want = jnp.array([[0.0] * 4, [1.0] * 4])
    chex.assert_trees_all_equal(res.masks, {"a/kernel": want, "b/kernel": want})
    assert float(res.sparsity) == 0.5
    # min_keep 1 keeps everything: the target is missed and the result says so.
    res = _run(ks, spec, PruneSpec(score_norm="none", target_sparsity=0.5, min_keep=1.0))
    assert float(res.sparsity) == 0.0


def test_threshold_mode_prunes_tiles_below_group_threshold():
    spec = XbarSpec(rows=8, cols=4)
    ks = _two_dense_layers()
    # Kernel threshold at .5 on dense weights: rows 1, 2 of A pruned -> t = 2. Tile A's RMS
    # sqrt(2.5)=1.58 < 2 -> pruned whole; tile B (15.8) is not. Kernel pass: nothing left.
    cfg = PruneSpec(score_norm="none", target_sparsity=0.5, crossbar_pass="threshold", min_keep=0.0,
                    crossbar_layer_cap=1.0)
    res = _run(ks, spec, cfg)
    chex.assert_trees_all_equal(res.tile_keep, {"a/kernel": jnp.zeros((1, 1)),
                                                "b/kernel": jnp.ones((1, 1))})
    np.testing.assert_allclose(res.group_threshold, -np.inf)
    # Tiles scoring above the kernel threshold survive the crossbar pass.
    # A rows 1, 30: kernel threshold t = 10 (A row 0, B row 0); tile RMS A 21.2, B 15.8 > t.
    ks2 = {"a/kernel": jnp.array([[1.0] * 4, [30.0] * 4]), "b/kernel": ks["b/kernel"]}
    res = _run(ks2, spec, cfg)
    chex.assert_trees_all_equal(res.tile_keep["a/kernel"], jnp.ones((1, 1)))
    chex.assert_trees_all_equal(res.masks["a/kernel"], jnp.array([[0.0] * 4, [1.0] * 4]))


def test_crossbar_layer_cap_keeps_a_layers_last_tiles():
    """The default cap (0.5) protects the top tiles holding half of each layer's weights: layer A
    has one tile, so the crossbar pass cannot take it and A is pruned group by group instead."""
    spec = XbarSpec(rows=8, cols=4)
    ks = _two_dense_layers()
    cfg = PruneSpec(score_norm="none", target_sparsity=0.5, crossbar_pass="threshold", min_keep=0.0)
    assert cfg.crossbar_layer_cap == 0.5
    res = _run(ks, spec, cfg)
    chex.assert_trees_all_equal(res.tile_keep, {"a/kernel": jnp.ones((1, 1)),
                                                "b/kernel": jnp.ones((1, 1))})
    # Kernel pass, budget 8: A's rows (RMS 1, 2) are the two lowest groups -> both pruned.
    chex.assert_trees_all_equal(res.masks["a/kernel"], jnp.zeros((2, 4)))
    chex.assert_trees_all_equal(res.masks["b/kernel"], jnp.ones((2, 4)))


def test_traced_target_under_jit_traces_once():
    spec = XbarSpec(rows=8, cols=4)
    cfg = PruneSpec(score_norm="none", crossbar_fraction=0.0, min_keep=0.0)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sparsity(ks, target):
        return masks_sparsity(crimp_prune(ks, spec, cfg, target).masks)

    ks = _two_dense_layers()
    got = [float(sparsity(ks, jnp.float32(t))) for t in (0.0, 0.25, 0.5, 0.75)]
    assert got == [0.0, 0.25, 0.5, 0.75]


def test_select_prunable_rules_and_errors(caplog):
    params = {"conv0": {"conv": {"kernel": jnp.zeros((3, 3, 3, 4))}},
              "conv1": {"conv": {"kernel": jnp.zeros((3, 3, 4, 4)), "bias": jnp.zeros(4)}},
              "fc": {"kernel": jnp.zeros((4, 10))}}
    with caplog.at_level(logging.INFO):
        paths = select_prunable(params, PruneSpec(exclude=("^conv0/", "^fc/")))
    assert paths == ["conv1/conv/kernel"]
    assert "'^fc/' matches ['fc/kernel']" in caplog.text
    with pytest.raises(ValueError, match=r"exclude rule '\^head/' matches no parameter"):
        select_prunable(params, PruneSpec(exclude=("^head/",)))


@pytest.mark.parametrize("field,value,msg", [
    ("target_sparsity", 1.0, r"prune.target_sparsity=1.0: expected a finite number in \[0, 1\)"),
    ("target_sparsity", float("nan"), r"prune.target_sparsity=nan: expected a finite number"),
    ("crossbar_fraction", -0.1, r"crossbar_fraction=-0.1: expected a finite number in \[0, 1\]"),
    ("crossbar_layer_cap", 0.0, r"crossbar_layer_cap=0.0: expected a finite number in \(0, 1\]"),
    ("min_keep", 2, r"min_keep=2: expected a finite number in \[0, 1\]"),
    ("crossbar_pass", "tiles", r"crossbar_pass='tiles': expected one of"),
    ("include", ("conv[",), r"prune.include entry='conv\[': expected a regular expression"),
])
def test_config_errors_name_value_and_range(field, value, msg):
    with pytest.raises(ValueError, match=msg):
        prune_spec({field: value})
    with pytest.raises(ValueError, match=r"unknown prune key\(s\) \['sparsity'\]"):
        prune_spec({"sparsity": 0.5})


def test_layer_rms_score_norm_ignores_layer_scale():
    """Two layers identical up to a x100 scale: 'none' empties the small one first, 'layer_rms'
    prunes both alike (equal scores; the shared budget can split one tied group of 36 weights)."""
    from crimp_jax.prune import crimp_prune
    from crimp_jax.xbar import XbarSpec

    rng = np.random.default_rng(0)
    k = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
    kernels = {"a/kernel": jnp.asarray(k), "b/kernel": jnp.asarray(100 * k)}
    spec = XbarSpec(rows=18, cols=4, channel_aligned=True)
    base = dict(target_sparsity=0.5, crossbar_fraction=0.0, min_keep=0.0)
    raw = crimp_prune(kernels, spec, dict(base, score_norm="none")).masks
    assert float(raw["a/kernel"].mean()) == 0.0 and float(raw["b/kernel"].mean()) == 1.0
    norm = crimp_prune(kernels, spec, dict(base, score_norm="layer_rms")).masks
    kept_a, kept_b = float(norm["a/kernel"].mean()), float(norm["b/kernel"].mean())
    assert abs(kept_a - kept_b) <= 36 / 216 and 0.4 <= kept_a <= 0.6 and 0.4 <= kept_b <= 0.6
    # The surviving groups are the same ones in both layers, up to that one tied group.
    assert float(jnp.sum(norm["a/kernel"] != norm["b/kernel"])) <= 36
    with pytest.raises(ValueError, match="score_norm='max'"):
        crimp_prune(kernels, spec, dict(base, score_norm="max"))
