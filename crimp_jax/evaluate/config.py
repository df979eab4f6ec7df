"""The `evaluate` block: Monte Carlo robustness and integer deployment after training."""

from __future__ import annotations

import dataclasses

from crimp_jax.evaluate.montecarlo import DEFAULT_CHIPS, MC_IMPLS
from crimp_jax.periphery import MAX_ADC_BITS, MAX_DAC_BITS
from crimp_jax.utils.blocks import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from crimp_jax.variation.config import MAX_SIGMA
from crimp_jax.variation.knobs import KNOBS, check_values

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
      engine: convert to the integer artifact and compare the integer engine with fake-quant
        on the whole test set (after training, and in an `experiments.evaluate` re-read
        under its chip settings: model_int.npz beside its evaluation.json).
      compensation: Monte Carlo curves to run: self-compensation 'off' and/or 'on'.
      adc_bits: ADC resolutions (1..16 bits) to sweep at `periphery_sigmas`, crossbar-faithfully
        (`crimp_jax.periphery`; the `adc` block's full scale and read, the `dac` block's
        bits); the ideal-ADC accuracy is reported next to them. () : no ADC sweep.
      dac_bits: DAC resolutions (bits per input cycle, 1..16, at most the activation bits) to
        sweep at `periphery_sigmas` with the `adc` block's bits (which must then be > 0).
      periphery_sigmas: the sigmas of the ADC, DAC and knob sweeps (compensation 'on' if run,
        else 'off', for the ADC and DAC sweeps).
      read_times: read times (seconds after programming, > 0) of a drift sweep at
        `headline_sigma`, compensation off and on as in `compensation`; the drift exponents
        come from the `variation` block (drift_nu_mean, drift_nu_std, drift_t0).
      knob: a swept knob ('' none; `crimp_jax.variation.knobs.KNOBS`: sigma, read_time,
        wire_ratio, adc_bits, ...) swept over `knob_values` at `periphery_sigmas` (the values
        are the sigmas when knob='sigma'), compensation off and on as in `compensation`; one
        compiled program for all values (`montecarlo.knob_sweep`).
      knob_values: the values of `knob` (each in the knob's range).
      calib_quantiles: ADC full-scale quantiles (each in (0, 1]) to compare: for each, the ADC
        full scales are calibrated again at that `adc.calib_quantile` and the ADC bits
        (`adc_bits`, else the `adc` block's bits) read at `periphery_sigmas`, beside ideal
        ADCs (`montecarlo.quantile_sweep`; adc.full_scale_ref must be 'calibrated'). () : none.
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
    adc_bits: tuple = ()
    dac_bits: tuple = ()
    periphery_sigmas: tuple = (0.0,)
    read_times: tuple = ()
    knob: str = ""
    knob_values: tuple = ()
    calib_quantiles: tuple = ()

    def __post_init__(self):
        check_int("evaluate.chips", self.chips, 0)
        self._sigma_tuple("sigmas")
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
        for name, hi in (("adc_bits", MAX_ADC_BITS), ("dac_bits", MAX_DAC_BITS)):
            values = tuple(getattr(self, name))
            for b in values:
                check_int(f"evaluate.{name} entry", b, 1, hi)
            object.__setattr__(self, name, values)
        self._sigma_tuple("periphery_sigmas")
        times = tuple(self.read_times)
        for t in times:
            check_float("evaluate.read_times entry", t, 0.0, lo_open=True)
        object.__setattr__(self, "read_times", tuple(float(t) for t in times))
        if self.knob:
            object.__setattr__(self, "knob_values",
                               check_values(self.knob, self.knob_values))
        elif tuple(self.knob_values):
            raise ConfigError(f"evaluate.knob_values={tuple(self.knob_values)!r} without "
                              f"evaluate.knob: name the knob to sweep (one of {tuple(KNOBS)})")
        else:
            object.__setattr__(self, "knob_values", ())
        quantiles = tuple(self.calib_quantiles)
        for q in quantiles:
            check_float("evaluate.calib_quantiles entry", q, 0.0, 1.0, lo_open=True)
        object.__setattr__(self, "calib_quantiles", tuple(float(q) for q in quantiles))

    def _sigma_tuple(self, name: str) -> None:
        """Field `name` as a non-empty tuple of floats, each a valid sigma."""
        sigmas = tuple(getattr(self, name))
        if not sigmas:
            raise ConfigError(f"evaluate.{name}=(): expected at least one sigma")
        for s in sigmas:
            check_float(f"evaluate.{name} entry", s, 0.0, MAX_SIGMA)
        object.__setattr__(self, name, tuple(float(s) for s in sigmas))
