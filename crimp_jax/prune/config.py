"""Pruning configuration: which layers, how much, and how the target is split between passes.

`PruneSpec` is a frozen (hashable) dataclass so it can be closed over by jitted functions;
`prune_spec` builds it from the `prune` block of an experiment config (ConfigDict or dict),
and `default_prune_config` gives that block with every field and its default.

Sparsity definition used everywhere in crimp_jax.prune:
  sparsity = (zeroed weights of the selected layers) / (weights of the selected layers),
counting real kernel entries only (never the zero padding of edge crossbars). Biases, BN
parameters and unselected layers count in neither numerator nor denominator.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from crimp_jax.utils.blocks import (
    check_choice,
    check_float,
    check_regex,
    default_block,
    parse_block,
)

CROSSBAR_PASS_MODES = ("fraction", "threshold")
SCORE_NORMS = ("layer_rms", "none")


@dataclasses.dataclass(frozen=True)
class PruneSpec:
    """How CRIMP prunes (see docs/method.md section 3).

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
      crossbar_layer_cap: [choice] the crossbar pass removes at most this fraction of any one
        layer's weights, in (0, 1] (1: no cap). A layer only one or two tiles tall (ResNet-20's
        16-channel convs: 144 rows = a 128-row and a 16-row tile) otherwise loses most of
        itself to one tile; with a cap c the tiles holding the top (1 - c) of the layer are
        protected in the crossbar pass (the kernel-group pass may still prune inside them).
      min_keep: per-layer minimum keep ratio in [0, 1]: in each pass, the highest-scoring groups
        of every layer that together hold min_keep of its weights are never pruned, so no layer
        collapses under the global threshold (the target may then be missed; it is reported).
      score_norm: [choice] 'layer_rms' (each layer's kernel divided by its RMS first, so the
        global threshold compares importance relative to the layer) or 'none' (L2 / sqrt(size)
        compared across layers as is). BN folding gives layers weight scales that differ by
        orders of magnitude; with 'none' the global threshold then empties whole layers
        (ResNet-20: every block's conv1 cut to the min_keep floor, conv2 untouched; ResNet-56
        on an H200: 52.09% with 'none', 80.79% with 'layer_rms').
      include, exclude: regex rules over kernel slash paths ('conv3/conv/kernel'); a layer is
        pruned if some include rule and no exclude rule matches it. Every rule must match at
        least one kernel (`crimp_jax.utils.paths.select_paths`), and every match is logged.
    """

    target_sparsity: float = 0.5
    crossbar_pass: str = "fraction"
    crossbar_fraction: float = 0.5
    crossbar_layer_cap: float = 0.5
    min_keep: float = 0.05
    score_norm: str = "layer_rms"
    include: tuple = (".*",)
    exclude: tuple = ()

    def __post_init__(self):
        check_float("prune.target_sparsity", self.target_sparsity, 0.0, 1.0, hi_open=True)
        check_choice("prune.crossbar_pass", self.crossbar_pass, CROSSBAR_PASS_MODES)
        check_float("prune.crossbar_fraction", self.crossbar_fraction, 0.0, 1.0)
        check_float("prune.crossbar_layer_cap", self.crossbar_layer_cap, 0.0, 1.0, lo_open=True)
        check_choice("prune.score_norm", self.score_norm, SCORE_NORMS)
        check_float("prune.min_keep", self.min_keep, 0.0, 1.0)
        # Tuples keep the dataclass hashable when a config hands us lists.
        for name in ("include", "exclude"):
            rules = tuple(getattr(self, name))
            for rule in rules:
                check_regex(f"prune.{name} entry", rule)
            object.__setattr__(self, name, rules)


def default_prune_config() -> ml_collections.ConfigDict:
    """The `prune` block an experiment config embeds (every PruneSpec field, defaults)."""
    return default_block(PruneSpec)


def prune_spec(cfg) -> PruneSpec:
    """Builds a validated `PruneSpec` from a config block (ConfigDict, dict or PruneSpec)."""
    return parse_block(cfg, PruneSpec, "prune")
