"""The `evaluate` block: Monte Carlo robustness and integer deployment after training."""

from __future__ import annotations

import dataclasses

from crimp_jax.evaluate.montecarlo import DEFAULT_CHIPS, MC_IMPLS
from crimp_jax.utils.blocks import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from crimp_jax.variation.config import MAX_SIGMA

COMPENSATION_CURVES = ("off", "on")


@dataclasses.dataclass(frozen=True)
class EvaluateSpec:
    """What happens after training.

    Attributes:
      chips: simulated programmed chips per sigma (0: no Monte Carlo).
      sigmas: write-variation sigmas of the sweep (non-empty, each finite and >= 0).
      headline_sigma: the sigma the console summary, tables and figures headline; one of
        `sigmas` when chips > 0.
      test_per_class: > 0: Monte Carlo on a class-balanced test subset (CPU runs); 0: all.
      chip_chunk: chips vmapped together ('vmap' implementation; bounds memory).
      batch_size: test images per Monte Carlo batch.
      mc_impl: Monte Carlo implementation: 'vmap' (one compiled program over chips), 'loop'
        (one jitted call per chip) or 'auto' ('loop' on CPUs, 'vmap' on GPUs/TPUs).
      seed: chip i is programmed with fold_in(PRNGKey(seed), i).
      engine: convert to the integer artifact and compare the integer engine with fake-quant.
      compensation: Monte Carlo curves to run: self-compensation 'off' and/or 'on'.
    """

    chips: int = DEFAULT_CHIPS
    sigmas: tuple = (0.0, 0.1, 0.2, 0.3, 0.5)
    headline_sigma: float = 0.3
    test_per_class: int = 0
    chip_chunk: int = 4
    batch_size: int = 1000
    mc_impl: str = "auto"
    seed: int = 1234
    engine: bool = True
    compensation: tuple = COMPENSATION_CURVES

    def __post_init__(self):
        check_int("evaluate.chips", self.chips, 0)
        sigmas = tuple(self.sigmas)
        if not sigmas:
            raise ConfigError("evaluate.sigmas=(): expected at least one sigma")
        for s in sigmas:
            check_float("evaluate.sigmas entry", s, 0.0, MAX_SIGMA)
        object.__setattr__(self, "sigmas", tuple(float(s) for s in sigmas))
        check_float("evaluate.headline_sigma", self.headline_sigma, 0.0)
        if self.chips and float(self.headline_sigma) not in self.sigmas:
            raise ConfigError(f"evaluate.headline_sigma={self.headline_sigma!r}: expected one of "
                              f"evaluate.sigmas {self.sigmas}")
        check_int("evaluate.test_per_class", self.test_per_class, 0)
        check_int("evaluate.chip_chunk", self.chip_chunk, 1)
        check_int("evaluate.batch_size", self.batch_size, 1)
        check_choice("evaluate.mc_impl", self.mc_impl, MC_IMPLS)
        check_int("evaluate.seed", self.seed)
        check_bool("evaluate.engine", self.engine)
        comp = tuple(self.compensation)
        if not comp or set(comp) - set(COMPENSATION_CURVES) or len(set(comp)) != len(comp):
            raise ConfigError(f"evaluate.compensation={comp!r}: expected a non-empty subset of "
                              f"{COMPENSATION_CURVES}")
        object.__setattr__(self, "compensation", comp)
