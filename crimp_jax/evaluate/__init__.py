"""Monte Carlo robustness evaluation: N programmed chips on the whole test set.

`evaluate_chips` (one compiled program, chips sharded over a 'chips' mesh axis, or a loop of
jitted calls), `sweep_points` / `sweep_sigmas` + `accuracy_summary` (JSON-able statistics),
`plot_accuracy_vs_sigma`, `plot_accuracy_vs_bits` (ADC/DAC sweeps), `plot_accuracy_vs_time`
(drift), `benchmark_mc_impls` (vmap vs loop vs
plain inference) and `EvaluateSpec` (the `evaluate` config block).
"""

from crimp_jax.evaluate.bench import benchmark_mc_impls
from crimp_jax.evaluate.config import EvaluateSpec
from crimp_jax.evaluate.montecarlo import (
    MC_IMPLS,
    batch_dataset,
    chip_mesh,
    count_correct,
    evaluate_chips,
    plain_accuracy,
    resolve_mc_impl,
)
from crimp_jax.evaluate.plot import (
    plot_accuracy_vs_bits,
    plot_accuracy_vs_sigma,
    plot_accuracy_vs_time,
)
from crimp_jax.evaluate.sweep import accuracy_summary, sweep_points, sweep_sigmas

__all__ = [
    "benchmark_mc_impls", "EvaluateSpec", "MC_IMPLS", "batch_dataset", "chip_mesh",
    "count_correct", "evaluate_chips", "plain_accuracy", "resolve_mc_impl", "plot_accuracy_vs_sigma",
    "plot_accuracy_vs_bits", "plot_accuracy_vs_time",
    "accuracy_summary", "sweep_points", "sweep_sigmas",
]
