"""The Monte Carlo section of a run: registered evaluators over one shared context.

`monte_carlo` builds a `Context` (the trained model, the test split, the run's periphery, one
`sweep` function) and runs every evaluator of `EVALUATORS` in order; each reads the `evaluate`
settings it needs and returns its section of `summary.json`'s `montecarlo` (or None when the
config does not ask for it). Registered:

  curves       accuracy per sigma (`evaluate.sigmas`), self-compensation off and/or on
  adc_sweep    ADC bits (`evaluate.adc_bits`) at `periphery_sigmas`, beside ideal ADCs
  dac_sweep    DAC bits (`evaluate.dac_bits`) at `periphery_sigmas`
  drift_sweep  read times (`evaluate.read_times`) at `headline_sigma`
  knob_sweep   any registered knob (`evaluate.knob`, `evaluate.knob_values`;
               `crimp_jax.variation.knobs.KNOBS`) at `periphery_sigmas`
  quantile_sweep  ADC full scales calibrated at each of `evaluate.calib_quantiles`, the ADC
               bits at `periphery_sigmas` for each

A new sweep is one `@evaluator("name")` function here (big_vision's registered evaluators); a
new swept setting needs none: it is a `Knob` entry that `knob_sweep` sweeps.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Callable, Optional

import jax

from crimp_jax.data import balanced_subset
from crimp_jax.evaluate.chips import (
    calibrated_periphery,
    chip_and_apply,
    chip_sweep,
    periphery_of,
    sigma_points,
    stays_within,
)
from crimp_jax.evaluate.plot import (
    plot_accuracy_vs_bits,
    plot_accuracy_vs_sigma,
    plot_accuracy_vs_time,
)
from crimp_jax.periphery import AdcSpec, DacSpec, Periphery
from crimp_jax.quant import quantize_weights_int
from crimp_jax.summary import curve_name, sigma_key, time_key
from crimp_jax.variation.knobs import KNOBS, knob_key

log = logging.getLogger(__name__)

EVALUATORS: dict = {}


def evaluator(name: str):
    """Registers `fn(ctx) -> dict | None` as the evaluator of `montecarlo.<name>`."""
    def register(fn: Callable):
        if name in EVALUATORS:
            raise ValueError(f"evaluator {name!r} is registered twice")
        EVALUATORS[name] = fn
        return fn
    return register


@dataclasses.dataclass
class Context:
    """What every evaluator reads: the run, the trained model, the Monte Carlo test split and
    the deployed (calibrated) periphery."""

    run: object
    graph: object
    params: object
    qstate: object
    masks: dict
    images: object
    labels: object
    workdir: Path
    fp_accuracy: Optional[float]
    cost_at: Optional[Callable]
    calib_images: object
    periphery: Periphery
    qe: dict

    @property
    def ecfg(self):
        return self.run.evaluate

    def compensations(self) -> list:
        """The compensation settings of the curves `evaluate.compensation` asks for."""
        return [c for c in (False, True) if ("on" if c else "off") in self.ecfg.compensation]

    @property
    def sweep_compensation(self) -> bool:
        """Compensation of the one-curve sweeps: on if that curve is run, else off."""
        return "on" in self.ecfg.compensation

    def curve(self, compensation: bool) -> str:
        return curve_name(self.run.uses["variation"], compensation)

    def calibrated(self, **changes) -> Periphery:
        """The run's periphery with adc/dac `changes`, its ADC full scales calibrated."""
        return calibrated_periphery(self.run, self.graph, self.params, self.qstate, self.masks,
                                    self.calib_images, **changes)

    def with_adc(self, adc: AdcSpec) -> Periphery:
        """The run's periphery with ADCs `adc`: its calibrated full scales kept where `adc`
        differs from the run's ADCs only in bits (the references do not depend on them: one
        calibration serves every resolution), else calibrated again."""
        per = self.periphery
        if per.references and dataclasses.replace(adc, bits=per.adc.bits) == per.adc:
            return dataclasses.replace(per, adc=adc)
        return self.calibrated(adc=adc)

    def bits_sweep(self, bits: tuple, periphery: Periphery) -> tuple:
        """ADC resolutions `bits` (a traced knob: one compiled program) at `periphery_sigmas`
        through `periphery`: ({sigma_key: {bits: summary}}, {sigma_key: fewest bits within
        0.5 points of ideal ADCs})."""
        sigmas = self.ecfg.periphery_sigmas
        points = {f"{sigma_key(s)}/{b}": {"sigma": s, "adc_bits": float(b)}
                  for s in sigmas for b in bits}
        res = self.sweep(self.sweep_compensation, points, periphery)
        by_sigma = {sigma_key(s): {str(b): res[f"{sigma_key(s)}/{b}"] for b in bits}
                    for s in sigmas}
        ideal = self.ideal_adc
        return by_sigma, {k: stays_within(v, ideal[k]["mean"]) for k, v in by_sigma.items()}

    def sweep(self, compensation: bool, points: dict, periphery: Periphery | None = None,
              n_chips: int | None = None) -> dict:
        """{point: accuracy_summary} of `evaluate.chips` chips at each point {name: knobs}."""
        vspec = dataclasses.replace(self.run.variation, compensation=compensation)
        chip, apply = chip_and_apply(self.graph, self.run.quant, vspec, self.run.xbar,
                                     periphery or self.periphery)
        return chip_sweep(self.run, vspec, chip, apply, self.images, self.labels, points,
                          (self.params, self.qstate, self.qe, self.masks), self.ecfg.seed,
                          n_chips or self.ecfg.chips, periphery or self.periphery)

    @functools.cached_property
    def ideal_adc(self) -> dict:
        """{sigma_key: summary} at `periphery_sigmas` with ideal ADCs (the sweeps' reference)."""
        return self.sweep(self.sweep_compensation, sigma_points(self.ecfg.periphery_sigmas),
                          periphery_of(self.run, adc=AdcSpec()))

    def figure(self, name: str) -> Path:
        return Path(self.workdir) / name


@evaluator("curves")
def curves(ctx: Context) -> dict:
    """Accuracy per sigma of `evaluate.sigmas`, self-compensation off and/or on, and the
    accuracy-vs-sigma figure (`montecarlo.figure`)."""
    e = ctx.ecfg
    out = {}
    for compensation in ctx.compensations():
        log.info("Monte Carlo %s: %d chips x %s", ctx.curve(compensation), e.chips, e.sigmas)
        out[ctx.curve(compensation)] = ctx.sweep(compensation, sigma_points(e.sigmas))
    plot_accuracy_vs_sigma(
        [(None, {c: {float(k): v for k, v in per_s.items()} for c, per_s in out.items()},
          ctx.fp_accuracy, e.chips)], ctx.figure("accuracy_vs_sigma.png"),
        headline_sigma=e.headline_sigma)
    return out


@evaluator("adc_sweep")
def adc_sweep(ctx: Context) -> dict | None:
    """ADC bits (`evaluate.adc_bits`, one compiled program: the bits are a traced knob) at
    `periphery_sigmas`, the fewest bits within 0.5 points of ideal ADCs, and their cost."""
    e, run = ctx.ecfg, ctx.run
    if not e.adc_bits:
        return None
    top = ctx.with_adc(dataclasses.replace(run.adc, bits=max(e.adc_bits)))
    by_sigma, within = ctx.bits_sweep(e.adc_bits, top)
    out = {
        "curve": ctx.curve(ctx.sweep_compensation), "dac_bits": run.dac.bits,
        "full_scale": run.adc.full_scale, "full_scale_ref": run.adc.full_scale_ref,
        "references": dict(top.references) or None,
        "read": run.adc.read, "sigmas": list(e.periphery_sigmas), "bits": list(e.adc_bits),
        "accuracy": by_sigma, "ideal": ctx.ideal_adc, "within_0.5_points": within,
        "cost": None if ctx.cost_at is None else
        {str(b): ctx.cost_at(b, run.dac.bits) for b in (0,) + tuple(e.adc_bits)},
        "figure": "accuracy_vs_adc_bits.png"}
    plot_accuracy_vs_bits(out, ctx.figure(out["figure"]), "ADC bits", ctx.fp_accuracy)
    return out


@evaluator("dac_sweep")
def dac_sweep(ctx: Context) -> dict | None:
    """DAC bits per input cycle (`evaluate.dac_bits`; each a compile: the cycle count is a
    shape) at `periphery_sigmas` with the run's ADCs."""
    e, run = ctx.ecfg, ctx.run
    if not e.dac_bits:
        return None
    res = {str(d): ctx.sweep(ctx.sweep_compensation, sigma_points(e.periphery_sigmas),
                             ctx.calibrated(dac=DacSpec(bits=d))) for d in e.dac_bits}
    out = {
        "curve": ctx.curve(ctx.sweep_compensation), "adc_bits": run.adc.bits,
        "sigmas": list(e.periphery_sigmas), "bits": list(e.dac_bits),
        "accuracy": {sigma_key(s): {d: r[sigma_key(s)] for d, r in res.items()}
                     for s in e.periphery_sigmas},
        "ideal": ctx.ideal_adc,
        "cost": None if ctx.cost_at is None else
        {str(d): ctx.cost_at(run.adc.bits, d) for d in e.dac_bits},
        "figure": "accuracy_vs_dac_bits.png"}
    plot_accuracy_vs_bits(out, ctx.figure(out["figure"]), "DAC bits per input cycle",
                          ctx.fp_accuracy)
    return out


@evaluator("drift_sweep")
def drift_sweep(ctx: Context) -> dict | None:
    """Read times (`evaluate.read_times`) at `headline_sigma`, compensation off and/or on."""
    e, v = ctx.ecfg, ctx.run.variation
    if not e.read_times:
        return None
    if not v.has_drift:
        log.warning("evaluate.read_times without drift (variation.drift_nu_mean = "
                    "drift_nu_std = 0): accuracy does not change with read time")
    points = {time_key(t): {"sigma": e.headline_sigma, "read_time": t} for t in e.read_times}
    out = {
        "sigma": e.headline_sigma, "times_s": list(e.read_times),
        "nu_mean": v.drift_nu_mean, "nu_std": v.drift_nu_std, "t0_s": v.drift_t0,
        "curves": {ctx.curve(c): ctx.sweep(c, points) for c in ctx.compensations()},
        "figure": "accuracy_vs_time.png"}
    plot_accuracy_vs_time(out, ctx.figure(out["figure"]), ctx.fp_accuracy)
    return out


@evaluator("knob_sweep")
def knob_sweep(ctx: Context) -> dict | None:
    """Any registered knob (`evaluate.knob` over `evaluate.knob_values`, one compiled program)
    at `periphery_sigmas` (the values are the sigmas when the knob is sigma), compensation
    off and/or on; accuracy per sigma per value, and a figure."""
    e = ctx.ecfg
    if not e.knob:
        return None
    name, values = e.knob, e.knob_values
    sigmas = (None,) if name == "sigma" else e.periphery_sigmas

    def point(s, v):
        return {name: v} if s is None else {"sigma": s, name: v}

    points = {f"{s}/{knob_key(v)}": point(s, v) for s in sigmas for v in values}
    curves = {}
    for c in ctx.compensations():
        res = ctx.sweep(c, points)
        curves[ctx.curve(c)] = {("-" if s is None else sigma_key(s)):
                                {knob_key(v): res[f"{s}/{knob_key(v)}"] for v in values}
                                for s in sigmas}
    out = {"knob": name, "doc": KNOBS[name].doc, "values": list(values),
           "sigmas": None if name == "sigma" else list(sigmas), "curves": curves,
           "figure": f"accuracy_vs_{name}.png"}
    last = ctx.curve(ctx.sweep_compensation)
    plot_accuracy_vs_bits({"curve": last, "accuracy": curves[last]}, ctx.figure(out["figure"]),
                          name, ctx.fp_accuracy)
    return out


@evaluator("quantile_sweep")
def quantile_sweep(ctx: Context) -> dict | None:
    """ADC full scales calibrated at each quantile of `evaluate.calib_quantiles` (the
    `adc.calib_quantile` of a re-calibration; adc.full_scale_ref = 'calibrated'): accuracy per
    ADC resolution (`evaluate.adc_bits`, else the run's adc.bits; the bits a traced knob, one
    compiled program per quantile) at `periphery_sigmas`, the fewest bits within 0.5 points of
    ideal ADCs per quantile, and each quantile's references (the run's own quantile keeps the
    deployment's calibration)."""
    e, run = ctx.ecfg, ctx.run
    if not e.calib_quantiles:
        return None
    bits = e.adc_bits or (run.adc.bits,)
    accuracy, within, references = {}, {}, {}
    for q in e.calib_quantiles:
        per = ctx.with_adc(dataclasses.replace(run.adc, bits=max(bits), calib_quantile=q))
        key = f"{q:g}"
        accuracy[key], within[key] = ctx.bits_sweep(bits, per)
        references[key] = dict(per.references)
    return {"curve": ctx.curve(ctx.sweep_compensation), "dac_bits": run.dac.bits,
            "full_scale_per": run.adc.full_scale_per, "read": run.adc.read,
            "quantiles": list(e.calib_quantiles), "sigmas": list(e.periphery_sigmas),
            "bits": list(bits), "accuracy": accuracy, "ideal": ctx.ideal_adc,
            "within_0.5_points": within, "references": references}


def monte_carlo(run, folded_model, params, qstate, masks_flat, test, workdir: Path,
                fp_accuracy: float | None = None, cost_at=None, calib_images=None,
                deployed: Periphery | None = None) -> dict:
    """`summary.json`'s `montecarlo`: the settings, then every registered evaluator's section.

    `cost_at(adc_bits, dac_bits)`: optional cost of the deployed design at that periphery
    (recorded next to each swept resolution). `calib_images`: training images that calibrate
    the ADC full scales (adc.full_scale_ref = 'calibrated'; once per DAC setting);
    `deployed`: the run's periphery when already calibrated (`calibrated_periphery`)."""
    e = run.evaluate
    split = balanced_subset(test, e.test_per_class, e.seed) if e.test_per_class else test
    per = deployed or calibrated_periphery(run, folded_model, params, qstate, masks_flat,
                                           calib_images)
    ctx = Context(run, folded_model, params, qstate, masks_flat,
                  jax.device_put(split.images), jax.device_put(split.labels), Path(workdir),
                  fp_accuracy, cost_at, calib_images, per,
                  jax.device_get(quantize_weights_int(folded_model, params, qstate, run.quant)))
    out = {"chips": e.chips, "sigmas": list(e.sigmas), "test_images": len(split.labels),
           "headline_sigma": e.headline_sigma,
           "variation": dataclasses.asdict(run.variation), "adc": dataclasses.asdict(run.adc),
           "dac": dataclasses.asdict(run.dac), "adc_references": dict(per.references) or None,
           "figure": "accuracy_vs_sigma.png"}
    for name, fn in EVALUATORS.items():
        section = fn(ctx)
        if section is not None:
            out[name] = section
    return out


__all__ = ["EVALUATORS", "evaluator", "Context", "monte_carlo"]
