"""Chips for evaluation: program a chip from a key and the sweep's knobs, read it through the
run's periphery, and sweep points of knobs over many chips.

`chip_and_apply` is the one way evaluation programs and reads a chip (the same `perturb` /
`read_chip` call a training step makes, so a trained chip and a deployed chip with the same
key are the same chip); `chip_sweep` evaluates points {name: knobs} over `evaluate.chips`
chips; `periphery_of` / `calibrated_periphery` build the run's periphery; `selection_scorer`
is model selection's chip score. The sweeps themselves are registered evaluators
(`crimp_jax.evaluate.evaluators`).
"""

from __future__ import annotations

import dataclasses
import logging

import jax

from crimp_jax.data import calibration_sample
from crimp_jax.evaluate.sweep import sweep_points
from crimp_jax.periphery import Periphery
from crimp_jax.periphery.reader import calibrate_periphery, crossbar_reader
from crimp_jax.quant import fake_quant_apply, make_plan, quantize_weights_int
from crimp_jax.summary import sigma_key
from crimp_jax.variation import perturb, read_chip, variation_spec
from crimp_jax.variation.knobs import device_at
from crimp_jax.variation.stages import chips_identical

log = logging.getLogger(__name__)
_READ_STREAM = 0x7FFFFFFF  # fold_in tag of a chip's per-read (read noise) keys
_SELECT_STREAM = 0x5E1EC7  # fold_in tag of the model-selection chips' seed


def sigma_points(sigmas, **knobs) -> dict:
    """{sigma_key: {'sigma': s, **knobs}}: one sweep point per sigma."""
    return {sigma_key(s): {"sigma": float(s), **knobs} for s in sigmas}


def chip_and_apply(folded_model, qcfg, vcfg, spec, periphery: Periphery | None = None):
    """(chip_params, apply_fn) for `evaluate.evaluate_chips` / `sweep_points`.

    chip_params(key, params, qstate, qe, masks, knobs) programs one chip from the quantized
    weights `qe` ({path: (q, e)}) with the per-layer weight bits of the quantization plan (the
    same `perturb` call a training step makes); `knobs` is sigma (a traced scalar) or the sweep's
    traced mapping {name: scalar} (`crimp_jax.variation.knobs`), passed on unchanged: the
    device stages and the ADCs each read the names they know. apply_fn runs the
    fake-quantized model (quantized biases and activations) on that chip: with ideal ADCs
    (`periphery` None or adc.bits 0) through its effective kernels, else crossbar-faithfully
    (`crimp_jax.periphery.reader`: the chip's cells through DACs, ADCs and shift-and-add). With
    read noise (`reads_per_batch`), apply_fn(chip, images, b) reads the arrays again for batch
    b: the same write draws (from the chip key), fresh read noise from
    fold_in(fold_in(key, READ), b). A crossbar-faithful chip's ADC errors (`adc.gain_std`,
    `adc.offset_std`) come from its key too (`periphery.reader.crossbar_reader`).
    """
    vspec = variation_spec(vcfg)
    per_read = reads_per_batch(vspec)
    plan = make_plan(folded_model, qcfg)
    faithful = periphery is not None and not periphery.adc.ideal

    def program(qe, key, masks, knobs, read_key=None):
        if faithful:
            return {"cells": read_chip(qe, key, vspec, spec, plan.wbits, masks, knobs=knobs,
                                       read_key=read_key)}
        return {"k": perturb(qe, key, vspec, spec, plan.wbits, masks, knobs=knobs,
                             read_key=read_key, scale_mode=plan.spec.scale_mode)}

    def chip(key, p, qs, qe, masks, knobs):
        knobs = knobs if isinstance(knobs, dict) else {"sigma": knobs}
        if per_read:  # the arrays are read again for every batch: keep what a read needs
            return {"p": p, "qs": qs, "qe": qe, "masks": masks, "key": key, "knobs": knobs}
        return {"p": p, "qs": qs, "knobs": knobs, "key": key, **program(qe, key, masks, knobs)}

    def apply(c, x, batch_index=None):
        prog = c  # programmed kernels or cells (or a plain model's {"p", "qs", "k"})
        if "k" not in c and "cells" not in c:
            if batch_index is None:
                raise ValueError("variation.read_noise > 0 is drawn per read: evaluate with "
                                 "per_batch=True (apply(chip, images, batch_index))")
            read_key = jax.random.fold_in(jax.random.fold_in(c["key"], _READ_STREAM),
                                          batch_index)
            prog = program(c["qe"], c["key"], c["masks"], c["knobs"], read_key)
        if "cells" in prog:
            cells = prog["cells"]
            xr = crossbar_reader(folded_model, plan, periphery, lambda wq: cells,
                                 knobs=c["knobs"], key=c.get("key"))
            return fake_quant_apply(folded_model, c["p"], c["qs"], x, qcfg, crossbar=xr)
        kernels = prog["k"]
        return fake_quant_apply(folded_model, c["p"], c["qs"], x, qcfg,
                                weight_transform=lambda wq: kernels)

    return chip, apply


def reads_per_batch(vcfg) -> bool:
    """True when the device model draws per read (read noise): Monte Carlo then evaluates with
    `per_batch=True`, one read of every array per test batch."""
    return variation_spec(vcfg).read_noise > 0


def chip_sweep(run, vspec, chip, apply, images, labels, points: dict, chip_args, seed,
               n_chips: int, periphery: Periphery | None = None) -> dict:
    """`sweep_points` of the chips `chip_and_apply` made for `vspec`, with the run's `evaluate`
    settings (chip chunk, batch size, implementation); a point whose chips are all the same
    (its knobs written into the device leave no random stage acting: `stages.chips_identical`)
    evaluates one chip for all."""
    e = run.evaluate

    def identical(knobs):
        return chips_identical(device_at(vspec, knobs)) and not adc_draws(periphery, knobs)

    return sweep_points(apply, chip, images, labels, points, chip_args=chip_args, seed=seed,
                        n_chips=n_chips, chip_chunk=e.chip_chunk,
                        batch_size=min(e.batch_size, len(labels)), impl=e.mc_impl,
                        identical=identical, per_batch=reads_per_batch(vspec))


def adc_draws(periphery: Periphery | None, knobs) -> bool:
    """True when chips read through `periphery` draw ADC errors at these knob values."""
    if periphery is None or periphery.adc.ideal:
        return False
    return (float(knobs.get("adc_gain_std", periphery.adc.gain_std)) > 0
            or float(knobs.get("adc_offset_std", periphery.adc.offset_std)) > 0)


def periphery_of(run, **changes) -> Periphery:
    """The run's periphery (`adc`, `dac`, `xbar`, cell mode, on/off ratio, the columns that
    share an ADC: `cost.adc_columns`), with `changes` to adc/dac."""
    return Periphery(changes.get("adc", run.adc), changes.get("dac", run.dac), run.xbar,
                     run.variation.mode, on_off_ratio=run.variation.on_off_ratio,
                     adc_columns=run.cost.adc_columns)


def calibrated_periphery(run, folded_model, params, qstate, masks, calib_images,
                         **changes) -> Periphery:
    """`periphery_of(run, **changes)` with its ADC full scales calibrated on `calib_images`
    (training images) when adc.full_scale_ref = 'calibrated' (`periphery.reader`)."""
    per = periphery_of(run, **changes)
    if not per.calibrated:
        return per
    if calib_images is None:
        raise ValueError("adc.full_scale_ref='calibrated' needs calibration images")
    sample = calibration_sample(calib_images, run.adc.calib_images, run.data.seed)
    per = calibrate_periphery(folded_model, params, qstate, run.quant, per, sample, masks)
    log.info("ADC full scales calibrated on %d images (quantile %g): %s",
             len(sample), run.adc.calib_quantile,
             ", ".join(f"{k} {v}" for k, v in per.references))
    return per


def stays_within(per_bits: dict, ideal_mean: float, points: float = 0.5):
    """The fewest bits from which every larger swept resolution is within `points` percentage
    points of the ideal-ADC mean accuracy (None if even the largest is not)."""
    best = None
    for b in sorted(per_bits, key=int, reverse=True):
        if per_bits[b]["mean"] < ideal_mean - points / 100:
            break
        best = int(b)
    return best


def selection_scorer(run, folded_model, val):
    """score(params, qstate, masks_flat) -> (mean, std) accuracy of `crimp.select_chips`
    chips at `crimp.select_sigma` over the validation split `val` (model selection). The chips
    are drawn from their own seed (not the evaluation chips'); compiled once per run."""
    c = run.crimp
    vspec = dataclasses.replace(run.variation, sigma=c.select_sigma,
                                compensation=c.select_compensation)
    chip, apply = chip_and_apply(folded_model, run.quant, vspec, run.xbar)
    images, labels = jax.device_put(val.images), jax.device_put(val.labels)
    seed = jax.random.fold_in(jax.random.key(run.evaluate.seed), _SELECT_STREAM)

    def score(params, qstate, masks_flat):
        qe = quantize_weights_int(folded_model, params, qstate, run.quant)
        (acc,) = chip_sweep(run, vspec, chip, apply, images, labels,
                            sigma_points((c.select_sigma,)), (params, qstate, qe, masks_flat),
                            seed, c.select_chips).values()
        return acc["mean"], acc["std"]

    return score
