"""Device non-idealities of RRAM crossbars and per-chip self-compensation (pure transforms).

`perturb(qe, key, vcfg, spec, bits, masks)` maps quantized kernels {path: (q, e)} to the effective
float kernels one programmed chip computes with; see `perturb.py` (keys, straight-through rule),
`device.py` (cell model), `compensate.py` (gains) and `config.py` (the `variation` block).
"""

from crimp_jax.variation.compensate import column_gains, pm_mantissas, round_gain
from crimp_jax.variation.config import (
    COMP_FORMS,
    KINDS,
    MODES,
    VariationSpec,
    default_variation_config,
    variation_spec,
)
from crimp_jax.variation.device import cell_levels, layer_effective, programmed_cells
from crimp_jax.variation.perturb import (
    chip_key,
    draw_keys,
    path_id,
    perturb,
    replace_kernels,
)

__all__ = [
    "column_gains", "pm_mantissas", "round_gain", "COMP_FORMS", "KINDS", "MODES", "VariationSpec",
    "default_variation_config", "variation_spec", "cell_levels", "layer_effective",
    "programmed_cells", "chip_key", "draw_keys", "path_id", "perturb", "replace_kernels",
]
