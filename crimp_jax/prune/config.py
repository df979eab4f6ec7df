"""Pruning configuration: which layers, how much, and how the target is split between passes.

`PruneConfig` is a frozen (hashable) dataclass so it can be closed over by jitted functions;
`prune_config` builds it from the `prune` block of an experiment config (ConfigDict or dict),
and `default_prune_config` gives that block with every field and its default.

Sparsity definition used everywhere in crimp_jax.prune:
  sparsity = (zeroed weights of the selected layers) / (weights of the selected layers),
counting real kernel entries only (never the zero padding of edge crossbars). Biases, BN
parameters and unselected layers count in neither numerator nor denominator.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from crimp_jax.utils.blocks import default_block, parse_block

CROSSBAR_PASS_MODES = ("fraction", "threshold")
SCORE_NORMS = ("none", "layer_rms")


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    """How CRIMP prunes (see DESIGN.md section 3).

    Attributes:
      target_sparsity: final fraction of the selected layers' weights that is zero, in [0, 1).
      crossbar_pass: [choice] how the crossbar (whole-tile) pass takes its share of the target.
        'fraction': the crossbar pass prunes the lowest-scoring tiles until
          crossbar_fraction * target of the weights are zero; the kernel-group pass then prunes
          inside the surviving tiles until the whole target is reached.
        'threshold': first find the global kernel-group threshold t for the full target on the
          unpruned weights; the crossbar pass prunes every tile whose score is below t (lowest
          first, never beyond the target); the kernel-group pass then tops up to the target.
      crossbar_fraction: share of the target given to the crossbar pass in 'fraction' mode,
        in [0, 1] (0: kernel groups only; 1: whole tiles only, as far as they reach).
      min_keep: per-layer minimum keep ratio in [0, 1]: in each pass, the highest-scoring groups
        of every layer that together hold min_keep of its weights are never pruned, so no layer
        collapses under the global threshold (the target may then be missed; it is reported).
      score_norm: [choice] 'none' (DESIGN.md: L2 / sqrt(size) compared across layers as is) or
        'layer_rms' (each layer's kernel divided by its RMS first, so the global threshold
        compares importance relative to the layer). BN folding gives layers weight scales that
        differ by orders of magnitude; with 'none' the global threshold then empties whole
        layers (ResNet-20: every block's conv1 cut to the min_keep floor, conv2 untouched).
      include, exclude: regex rules over kernel slash paths ('conv3/conv/kernel'); a layer is
        pruned if some include rule and no exclude rule matches it. Every rule must match at
        least one kernel (`crimp_jax.utils.paths.select_paths`), and every match is logged.
    """

    target_sparsity: float = 0.5
    crossbar_pass: str = "fraction"
    crossbar_fraction: float = 0.5
    min_keep: float = 0.05
    score_norm: str = "none"
    include: tuple = (".*",)
    exclude: tuple = ()

    def __post_init__(self):
        if not 0.0 <= float(self.target_sparsity) < 1.0:
            raise ValueError(
                f"prune.target_sparsity={self.target_sparsity!r}: expected a float in [0, 1)")
        if self.crossbar_pass not in CROSSBAR_PASS_MODES:
            raise ValueError(f"prune.crossbar_pass={self.crossbar_pass!r}: expected one of "
                             f"{CROSSBAR_PASS_MODES}")
        if not 0.0 <= float(self.crossbar_fraction) <= 1.0:
            raise ValueError(
                f"prune.crossbar_fraction={self.crossbar_fraction!r}: expected a float in [0, 1]")
        if self.score_norm not in SCORE_NORMS:
            raise ValueError(f"prune.score_norm={self.score_norm!r}: expected one of "
                             f"{SCORE_NORMS}")
        if not 0.0 <= float(self.min_keep) <= 1.0:
            raise ValueError(f"prune.min_keep={self.min_keep!r}: expected a float in [0, 1]")
        # Tuples keep the dataclass hashable when a config hands us lists.
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))


def default_prune_config() -> ml_collections.ConfigDict:
    """The `prune` block an experiment config embeds (every PruneConfig field, defaults)."""
    return default_block(PruneConfig)


def prune_config(cfg) -> PruneConfig:
    """Builds a validated `PruneConfig` from a config block (ConfigDict, dict or PruneConfig)."""
    return parse_block(cfg, PruneConfig, "prune")
