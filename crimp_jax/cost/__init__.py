"""Hardware cost model: computing power and area of a model mapped onto RRAM crossbars.

components.json (cited figures, overridable) -> count.py (per-layer unit counts through the
crossbar view) -> model.py (per-layer / per-component power and area, reductions against the
references) -> plots.py (figures); calibrate.py reproduces the conference paper's VGG-16 setting.
"""

from crimp_jax.cost.components import (
    Component,
    apply_overrides,
    load_components,
    load_table,
    unconfirmed,
)
from crimp_jax.cost.count import (
    BASE_COMPONENTS,
    MULTIPLIER_KINDS,
    PRUNING_KINDS,
    SCALE_KINDS,
    CountOptions,
    crimp_tiles_per_col_tile,
    layer_counts,
    unstructured_tiles_per_col_tile,
)
from crimp_jax.cost.model import (
    cost_setup,
    cost_summary,
    default_cost_config,
    layer_shapes,
    model_cost,
    natural_key,
    random_unstructured_masks,
    reductions,
)

__all__ = [
    "Component", "apply_overrides", "load_components", "load_table", "unconfirmed",
    "BASE_COMPONENTS", "MULTIPLIER_KINDS", "PRUNING_KINDS", "SCALE_KINDS", "CountOptions",
    "crimp_tiles_per_col_tile", "unstructured_tiles_per_col_tile", "layer_counts",
    "cost_setup", "cost_summary", "default_cost_config", "random_unstructured_masks", "layer_shapes",
    "model_cost", "natural_key", "reductions",
]
