"""After training: integer deployment, Monte Carlo robustness, pruning report and cost.

Each function takes the trained (masked) folded params and returns a JSON-able dict for
`summary.json`; artifacts and figures are written into the workdir.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax
import numpy as np

from crimp_jax import cost as cost_lib
from crimp_jax import prune as prune_lib
from crimp_jax.data import balanced_subset, calibration_sample
from crimp_jax.evaluate import (
    plot_accuracy_vs_bits,
    plot_accuracy_vs_sigma,
    plot_accuracy_vs_time,
    sweep_points,
)
from crimp_jax.integer import compare_engine, convert, load_artifact, save_artifact
from crimp_jax.quant import (
    fake_quant_apply,
    make_plan,
    quant_spec,
    quantize_weights_int,
)
from crimp_jax.summary import curve_name, sigma_key, time_key
from crimp_jax.utils.paths import flatten
from crimp_jax.variation import perturb, read_chip, variation_spec
from crimp_jax.variation.analog import calibrate_periphery, crossbar_reader, ideal_reads
from crimp_jax.variation.stages import chip_is_ideal
from crimp_jax.xbar.periphery import AdcSpec, DacSpec, Periphery

log = logging.getLogger(__name__)
_READ_STREAM = 0x7FFFFFFF  # fold_in tag of a chip's per-read (read noise) keys
_SELECT_STREAM = 0x5E1EC7  # fold_in tag of the model-selection chips' seed


def integer_deploy(workdir: Path, model_name: str, folded_model, params, qstate, qcfg, test,
                   periphery: Periphery | None = None, masks: dict | None = None):
    """Convert -> save -> load -> run the integer engine; compare with the fake-quant model.

    With finite ADCs (`periphery.adc.bits > 0`) the artifact is crossbar-faithful and is
    compared with the fake-quantized ADC path on ideal cells (`variation.analog`)."""
    faithful = periphery is not None and not periphery.adc.ideal
    artifact = convert(folded_model, params, qstate, qcfg, model_name=model_name,
                       periphery=periphery if faithful else None, masks=masks)
    path = Path(workdir) / "model_int.npz"
    save_artifact(artifact, str(path))
    loaded = load_artifact(str(path))
    crossbar = None
    if faithful:
        plan = make_plan(folded_model, qcfg)
        crossbar = crossbar_reader(folded_model, plan, periphery,
                                   ideal_reads(periphery, plan.wbits, masks))
    cmp = compare_engine(loaded, folded_model, params, qstate, qcfg, test.images, test.labels,
                         crossbar=crossbar)
    cmp["artifact"] = path.name
    cmp["crossbar_faithful"] = faithful
    return cmp


def chip_and_apply(folded_model, qcfg, vcfg, spec, periphery: Periphery | None = None):
    """(chip_params, apply_fn) for `evaluate.evaluate_chips` / `sweep_points`.

    chip_params(key, params, qstate, qe, masks, knobs) programs one chip from the quantized
    weights `qe` ({path: (q, e)}) with the per-layer weight bits of the quantization plan (the
    same `perturb` call a training step makes); `knobs` is sigma (a traced scalar) or a dict of
    traced overrides {'sigma', 'read_time', 'adc_bits'} (`sweep_points`). apply_fn runs the
    fake-quantized model (quantized biases and activations) on that chip: with ideal ADCs
    (`periphery` None or adc.bits 0) through its effective kernels, else crossbar-faithfully
    (`crimp_jax.variation.analog`: the chip's cells through DACs, ADCs and shift-and-add). With
    read noise (`reads_per_batch`), apply_fn(chip, images, b) reads the arrays again for batch
    b: the same write draws (from the chip key), fresh read noise from
    fold_in(fold_in(key, READ), b).
    """
    vspec = variation_spec(vcfg)
    per_read = reads_per_batch(vspec)
    plan = make_plan(folded_model, qcfg)
    faithful = periphery is not None and not periphery.adc.ideal

    def program(qe, key, masks, knobs, read_key=None):
        kw = dict(sigma=knobs["sigma"], read_time=knobs.get("read_time"), read_key=read_key)
        if faithful:
            return {"cells": read_chip(qe, key, vspec, spec, plan.wbits, masks, **kw)}
        return {"k": perturb(qe, key, vspec, spec, plan.wbits, masks,
                             scale_mode=plan.spec.scale_mode, **kw)}

    def chip(key, p, qs, qe, masks, knobs):
        knobs = knobs if isinstance(knobs, dict) else {"sigma": knobs}
        if per_read:  # the arrays are read again for every batch: keep what a read needs
            return {"p": p, "qs": qs, "qe": qe, "masks": masks, "key": key, "knobs": knobs}
        return {"p": p, "qs": qs, "knobs": knobs, **program(qe, key, masks, knobs)}

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
                                 adc_bits=c["knobs"].get("adc_bits"))
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
               n_chips: int) -> dict:
    """`sweep_points` of the chips `chip_and_apply` made for `vspec`, with the run's `evaluate`
    settings (chip chunk, batch size, implementation); a point whose chips are all ideal (sigma 0
    with no other non-ideality at its read time) evaluates one chip for all."""
    e = run.evaluate

    def ideal(knobs):
        return chip_is_ideal(dataclasses.replace(
            vspec, sigma=float(knobs["sigma"]),
            read_time=float(knobs.get("read_time", vspec.read_time))))

    return sweep_points(apply, chip, images, labels, points, chip_args=chip_args, seed=seed,
                        n_chips=n_chips, chip_chunk=e.chip_chunk,
                        batch_size=min(e.batch_size, len(labels)), impl=e.mc_impl,
                        ideal=ideal, per_batch=reads_per_batch(vspec))


def periphery_of(run, **changes) -> Periphery:
    """The run's periphery (`adc`, `dac`, `xbar`, cell mode), with `changes` to adc/dac."""
    return Periphery(changes.get("adc", run.adc), changes.get("dac", run.dac), run.xbar,
                     run.variation.mode)


def calibrated_periphery(run, folded_model, params, qstate, masks, calib_images,
                         **changes) -> Periphery:
    """`periphery_of(run, **changes)` with its ADC full scales calibrated on `calib_images`
    (training images) when adc.full_scale_ref = 'calibrated' (`variation.analog`)."""
    per = periphery_of(run, **changes)
    if not per.calibrated:
        return per
    if calib_images is None:
        raise ValueError("adc.full_scale_ref='calibrated' needs calibration images")
    sample = calibration_sample(calib_images, run.adc.calib_images, run.data.seed)
    per = calibrate_periphery(folded_model, params, qstate, run.quant, per, sample, masks)
    log.info("ADC full scales calibrated on %d images (quantile %g): %s",
             len(sample), run.adc.calib_quantile,
             ", ".join(f"{k} {v:g}" for k, v in per.references))
    return per


def _sigma_points(sigmas, **knobs) -> dict:
    return {sigma_key(s): {"sigma": float(s), **knobs} for s in sigmas}


def stays_within(per_bits: dict, ideal_mean: float, points: float = 0.5):
    """The fewest bits from which every larger swept resolution is within `points` percentage
    points of the ideal-ADC mean accuracy (None if even the largest is not)."""
    best = None
    for b in sorted(per_bits, key=int, reverse=True):
        if per_bits[b]["mean"] < ideal_mean - points / 100:
            break
        best = int(b)
    return best


def monte_carlo(run, folded_model, params, qstate, masks_flat, test, workdir: Path,
                fp_accuracy: float | None = None, cost_at=None, calib_images=None,
                deployed: Periphery | None = None) -> dict:
    """Accuracy of `evaluate.chips` chips per sigma, with self-compensation off and/or on,
    through the run's periphery (`adc`, `dac`); then the sweeps the `evaluate` block asks for:
    ADC bits and DAC bits at `periphery_sigmas`, read times at the headline sigma.
    `cost_at(adc_bits, dac_bits)`: optional cost of the deployed design at that periphery
    (recorded next to each swept resolution). `calib_images`: training images that calibrate
    the ADC full scales (adc.full_scale_ref = 'calibrated'; once per DAC setting);
    `deployed`: the run's periphery when already calibrated (`calibrated_periphery`)."""
    ecfg = run.evaluate
    split = balanced_subset(test, ecfg.test_per_class, ecfg.seed) if ecfg.test_per_class else test
    images, labels = jax.device_put(split.images), jax.device_put(split.labels)
    qe = jax.device_get(quantize_weights_int(folded_model, params, qstate, run.quant))
    args = (params, qstate, qe, masks_flat)

    def periphery(**changes):
        return calibrated_periphery(run, folded_model, params, qstate, masks_flat, calib_images,
                                    **changes)

    per = deployed or periphery()

    def sweep(compensation, points, periphery=per, n_chips=ecfg.chips):
        vspec = dataclasses.replace(run.variation, compensation=compensation)
        chip, apply = chip_and_apply(folded_model, run.quant, vspec, run.xbar, periphery)
        return chip_sweep(run, vspec, chip, apply, images, labels, points, args, ecfg.seed,
                          n_chips)

    curves = {}
    for compensation in (False, True):
        if ("on" if compensation else "off") not in ecfg.compensation:
            continue
        name = curve_name(run.uses["variation"], compensation)
        log.info("Monte Carlo %s: %d chips x %s", name, ecfg.chips, ecfg.sigmas)
        curves[name] = sweep(compensation, _sigma_points(ecfg.sigmas))
    png = Path(workdir) / "accuracy_vs_sigma.png"
    plot_accuracy_vs_sigma(
        [(None, {c: {float(k): v for k, v in per_s.items()} for c, per_s in curves.items()},
          fp_accuracy, ecfg.chips)], png, headline_sigma=ecfg.headline_sigma)
    out = {"chips": ecfg.chips, "sigmas": list(ecfg.sigmas), "test_images": len(split.labels),
           "headline_sigma": ecfg.headline_sigma,
           "variation": dataclasses.asdict(run.variation), "adc": dataclasses.asdict(run.adc),
           "dac": dataclasses.asdict(run.dac), "adc_references": dict(per.references) or None,
           "curves": curves, "figure": png.name}
    comp = "on" in ecfg.compensation
    sweep_curve = curve_name(run.uses["variation"], comp)
    sigmas = ecfg.periphery_sigmas
    if ecfg.adc_bits or ecfg.dac_bits:
        ideal = sweep(comp, _sigma_points(sigmas), periphery_of(run, adc=AdcSpec()))
    if ecfg.adc_bits:
        top = dataclasses.replace(run.adc, bits=max(ecfg.adc_bits))  # bits are traced
        # the calibrated references do not depend on the ADC bits: one calibration serves all
        top = dataclasses.replace(per, adc=top) if per.references else periphery(adc=top)
        points = {f"{sigma_key(s)}/{b}": {"sigma": s, "adc_bits": float(b)}
                  for s in sigmas for b in ecfg.adc_bits}
        res = sweep(comp, points, top)
        by_sigma = {sigma_key(s): {str(b): res[f"{sigma_key(s)}/{b}"] for b in ecfg.adc_bits}
                    for s in sigmas}
        out["adc_sweep"] = {
            "curve": sweep_curve, "dac_bits": run.dac.bits, "full_scale": run.adc.full_scale,
            "full_scale_ref": run.adc.full_scale_ref,
            "references": dict(top.references) or None,
            "read": run.adc.read, "sigmas": list(sigmas), "bits": list(ecfg.adc_bits),
            "accuracy": by_sigma, "ideal": ideal,
            "within_0.5_points": {k: stays_within(v, ideal[k]["mean"])
                                  for k, v in by_sigma.items()},
            "cost": None if cost_at is None else
            {str(b): cost_at(b, run.dac.bits) for b in (0,) + tuple(ecfg.adc_bits)},
            "figure": "accuracy_vs_adc_bits.png"}
        plot_accuracy_vs_bits(out["adc_sweep"], Path(workdir) / "accuracy_vs_adc_bits.png",
                              "ADC bits", fp_accuracy)
    if ecfg.dac_bits:
        res = {}
        for d in ecfg.dac_bits:
            r = sweep(comp, _sigma_points(sigmas), periphery(dac=DacSpec(bits=d)))
            res[str(d)] = r
        by_sigma = {sigma_key(s): {d: r[sigma_key(s)] for d, r in res.items()} for s in sigmas}
        out["dac_sweep"] = {
            "curve": sweep_curve, "adc_bits": run.adc.bits, "sigmas": list(sigmas),
            "bits": list(ecfg.dac_bits), "accuracy": by_sigma, "ideal": ideal,
            "cost": None if cost_at is None else
            {str(d): cost_at(run.adc.bits, d) for d in ecfg.dac_bits},
            "figure": "accuracy_vs_dac_bits.png"}
        plot_accuracy_vs_bits(out["dac_sweep"], Path(workdir) / "accuracy_vs_dac_bits.png",
                              "DAC bits per input cycle", fp_accuracy)
    if ecfg.read_times:
        v = run.variation
        if not v.has_drift:
            log.warning("evaluate.read_times without drift (variation.drift_nu_mean = "
                        "drift_nu_std = 0): accuracy does not change with read time")
        points = {time_key(t): {"sigma": ecfg.headline_sigma, "read_time": t}
                  for t in ecfg.read_times}
        drift_curves = {}
        for compensation in (False, True):
            if ("on" if compensation else "off") in ecfg.compensation:
                drift_curves[curve_name(run.uses["variation"], compensation)] = sweep(
                    compensation, points)
        out["drift_sweep"] = {
            "sigma": ecfg.headline_sigma, "times_s": list(ecfg.read_times),
            "nu_mean": v.drift_nu_mean, "nu_std": v.drift_nu_std, "t0_s": v.drift_t0,
            "curves": drift_curves, "figure": "accuracy_vs_time.png"}
        plot_accuracy_vs_time(out["drift_sweep"], Path(workdir) / "accuracy_vs_time.png",
                              fp_accuracy)
    return out


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
                            _sigma_points((c.select_sigma,)), (params, qstate, qe, masks_flat),
                            seed, c.select_chips).values()
        return acc["mean"], acc["std"]

    return score


def strip_prefix(flat: dict, prefix: str = "params/") -> dict:
    return {k.removeprefix(prefix): v for k, v in flat.items()}


def prune_report(run, masks_flat: dict, dense_kernels: dict, bits, workdir: Path,
                 model_name: str):
    """Per-layer CRIMP table, baselines at equal sparsity, and the occupancy figure."""
    masks_np = {p: np.asarray(m) for p, m in masks_flat.items()}
    # Baselines rank weights the way CRIMP does (same layer normalisation).
    dense_kernels = prune_lib.normalize_scores(dense_kernels, run.prune)
    tables = prune_lib.compare_schemes(dense_kernels, masks_np, run.xbar, bits,
                                       min_keep=run.prune.min_keep)
    png = Path(workdir) / "crossbar_occupancy.png"
    prune_lib.plot_occupancy(tables, str(png), model_name)
    rows = tables["crimp"]
    return {"target_sparsity": run.prune.target_sparsity,
            "sparsity": float(prune_lib.masks_sparsity(masks_np)),
            "layers": rows, "totals": prune_lib.totals(rows),
            "baselines": {k: prune_lib.totals(v) for k, v in tables.items() if k != "crimp"},
            "markdown": prune_lib.markdown_table(rows), "figure": png.name}


def cost_report(run, params, masks_flat: dict | None, scale: str, bits, *,
                adc_bits: int | None = None, dac_bits: int | None = None) -> dict:
    """Power/area of the deployed model and its reductions against the references (the
    unstructured reference keeps as many weights per layer, `cost.random_unstructured_masks`),
    every design with the run's periphery (`adc.bits`, `dac.bits`; 0 = the reference ADC), or
    with `adc_bits` / `dac_bits` when given (a periphery sweep)."""
    red = cost_lib.reductions(
        params, run.xbar, bits, masks_flat or None, scale=scale, cfg=run.cost,
        adc_bits=run.adc.bits if adc_bits is None else adc_bits,
        dac_bits=run.dac.bits if dac_bits is None else dac_bits)
    return cost_lib.cost_summary(red)


def periphery_cost(cost: dict) -> dict:
    """The essentials of a `cost_report` for a periphery sweep: the deployed design's power and
    area, its reductions against the original model and the saving of its periphery against the
    reference (8-bit ADCs, 1-bit DACs)."""
    return {"adc_bits": cost["adc_bits"], "dac_bits": cost["dac_bits"],
            "power_mw": cost["power_mw"], "area_mm2": cost["area_mm2"],
            "power_reduction": cost["power_reduction"].get("original"),
            "area_reduction": cost["area_reduction"].get("original"),
            "periphery_saving": cost["periphery_saving"]}


def kernel_bits(folded_model, qcfg) -> dict:
    """{kernel path: weight bits} resolved by the quantization rules."""
    return dict(make_plan(folded_model, qcfg).wbits)


def quant_summary(qcfg) -> dict:
    s = quant_spec(qcfg)
    return {"weight_bits": s.weight_bits, "act_bits": s.act_bits, "scale": s.scale_mode,
            "per_channel": s.per_channel}


def flat_masks(masks) -> dict:
    """{kernel path: mask} in network order (pytrees sort dict keys: conv10 before conv2)."""
    if masks is None:
        return {}
    flat = strip_prefix(flatten(masks))
    return {k: flat[k] for k in sorted(flat, key=cost_lib.natural_key)}
