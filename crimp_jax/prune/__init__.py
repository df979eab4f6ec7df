"""Crossbar-aligned pruning (docs/method.md section 3): groups, masks, zerorize-recover, reports."""

from crimp_jax.prune.baselines import filter_masks, magnitude_masks
from crimp_jax.prune.config import PruneSpec, default_prune_config, prune_spec
from crimp_jax.prune.masks import (
    PruneResult,
    crimp_masks,
    crimp_prune,
    masks_sparsity,
    normalize_scores,
    select_prunable,
)
from crimp_jax.prune.optimizer import (
    ZerorizeRecoverState,
    apply_masks,
    zerorize_recover,
)
from crimp_jax.prune.repack import layer_hardware
from crimp_jax.prune.report import (
    compare_schemes,
    layer_table,
    markdown_table,
    plot_occupancy,
    totals,
)
from crimp_jax.prune.schedule import (
    ZerorizeSchedule,
    is_zerorized,
    phase,
    target_sparsity,
)

__all__ = [
    "filter_masks", "magnitude_masks", "PruneSpec", "default_prune_config", "prune_spec",
    "PruneResult", "crimp_masks", "crimp_prune", "masks_sparsity", "normalize_scores",
    "select_prunable",
    "ZerorizeRecoverState", "apply_masks", "zerorize_recover", "layer_hardware",
    "compare_schemes", "layer_table", "markdown_table", "plot_occupancy", "totals",
    "ZerorizeSchedule", "is_zerorized", "phase", "target_sparsity",
]
