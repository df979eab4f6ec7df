"""Monte Carlo robustness evaluation: N programmed chips on the whole test set.

`evaluate_chips` (one compiled program, chips sharded over a 'chips' mesh axis, or a loop of
jitted calls), `sweep_sigmas` + `accuracy_summary` (JSON-able statistics), `plot_accuracy_vs_sigma`
(PNG of the four ablations) and `benchmark_methods` (vmap vs loop vs plain inference).
"""

from crimp_jax.evaluate.bench import benchmark_methods
from crimp_jax.evaluate.montecarlo import (
    METHODS, batch_dataset, chip_mesh, count_correct, evaluate_chips, plain_accuracy,
    resolve_method)
from crimp_jax.evaluate.plot import ABLATIONS, plot_accuracy_vs_sigma
from crimp_jax.evaluate.summary import accuracy_summary, sigma_key, sweep_sigmas

__all__ = [
    "benchmark_methods", "METHODS", "batch_dataset", "chip_mesh", "count_correct",
    "evaluate_chips", "plain_accuracy", "resolve_method", "ABLATIONS", "plot_accuracy_vs_sigma",
    "accuracy_summary", "sigma_key", "sweep_sigmas",
]
