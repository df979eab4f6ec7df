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
from crimp_jax.data import balanced_subset
from crimp_jax.evaluate import plot_accuracy_vs_sigma, sweep_sigmas
from crimp_jax.integer import compare_engine, convert, load_artifact, save_artifact
from crimp_jax.quant import (
    fake_quant_apply,
    make_plan,
    quant_spec,
    quantize_weights_int,
)
from crimp_jax.summary import curve_name
from crimp_jax.utils.paths import flatten
from crimp_jax.variation import perturb, variation_spec

log = logging.getLogger(__name__)
_READ_STREAM = 0x7FFFFFFF  # fold_in tag of a chip's per-read (read noise) keys
_SELECT_STREAM = 0x5E1EC7  # fold_in tag of the model-selection chips' seed


def integer_deploy(workdir: Path, model_name: str, folded_model, params, qstate, qcfg, test):
    """Convert -> save -> load -> run the integer engine; compare with the fake-quant model."""
    artifact = convert(folded_model, params, qstate, qcfg, model_name=model_name)
    path = Path(workdir) / "model_int.npz"
    save_artifact(artifact, str(path))
    loaded = load_artifact(str(path))
    cmp = compare_engine(loaded, folded_model, params, qstate, qcfg, test.images, test.labels)
    cmp["artifact"] = path.name
    return cmp


def chip_and_apply(folded_model, qcfg, vcfg, spec):
    """(chip_params, apply_fn) for `evaluate.evaluate_chips` / `sweep_sigmas`.

    chip_params(key, params, qstate, qe, masks, sigma) programs one chip: its effective kernels
    from the quantized weights `qe` ({path: (q, e)}), with the per-layer weight bits of the
    quantization plan (the same `perturb` call a training step makes); apply_fn runs the
    fake-quantized model (quantized biases and activations) with those kernels. With read
    noise (`reads_per_batch`), apply_fn(chip, images, b) reads the arrays again for batch b:
    the same write draws (from the chip key), fresh read noise from
    fold_in(fold_in(key, READ), b).
    """
    vspec = variation_spec(vcfg)
    per_read = reads_per_batch(vspec)
    plan = make_plan(folded_model, qcfg)

    def program(qe, key, masks, sigma, read_key=None):
        return perturb(qe, key, vspec, spec, plan.wbits, masks, sigma=sigma, read_key=read_key,
                       scale_mode=plan.spec.scale_mode)

    def chip(key, p, qs, qe, masks, sigma):
        if per_read:  # the arrays are read again for every batch: keep what a read needs
            return {"p": p, "qs": qs, "qe": qe, "masks": masks, "key": key, "sigma": sigma}
        return {"p": p, "qs": qs, "k": program(qe, key, masks, sigma)}

    def apply(c, x, batch_index=None):
        kernels = c.get("k")  # programmed kernels (or a plain model's {"p", "qs", "k"})
        if kernels is None:
            if batch_index is None:
                raise ValueError("variation.read_noise > 0 is drawn per read: evaluate with "
                                 "per_batch=True (apply(chip, images, batch_index))")
            read_key = jax.random.fold_in(jax.random.fold_in(c["key"], _READ_STREAM),
                                          batch_index)
            kernels = program(c["qe"], c["key"], c["masks"], c["sigma"], read_key)
        return fake_quant_apply(folded_model, c["p"], c["qs"], x, qcfg,
                                weight_transform=lambda wq: kernels)

    return chip, apply


def reads_per_batch(vcfg) -> bool:
    """True when the device model draws per read (read noise): Monte Carlo then evaluates with
    `per_batch=True`, one read of every array per test batch."""
    return variation_spec(vcfg).read_noise > 0


def chip_sweep(run, vspec, chip, apply, images, labels, sigmas, chip_args, seed,
               n_chips: int) -> dict:
    """`sweep_sigmas` of the chips `chip_and_apply` made for `vspec`, with the run's
    `evaluate` settings (chip chunk, batch size, implementation); at sigma 0 on otherwise ideal
    devices one chip stands for all."""
    e = run.evaluate
    return sweep_sigmas(apply, chip, images, labels, sigmas, chip_args=chip_args, seed=seed,
                        n_chips=n_chips, chip_chunk=e.chip_chunk,
                        batch_size=min(e.batch_size, len(labels)), impl=e.mc_impl,
                        ideal_at_zero=dataclasses.replace(vspec, sigma=0.0).is_ideal,
                        per_batch=reads_per_batch(vspec))


def monte_carlo(run, folded_model, params, qstate, masks_flat, test, workdir: Path,
                fp_accuracy: float | None = None) -> dict:
    """Accuracy of `evaluate.chips` chips per sigma, with self-compensation off and/or on."""
    ecfg = run.evaluate
    split = balanced_subset(test, ecfg.test_per_class, ecfg.seed) if ecfg.test_per_class else test
    images, labels = jax.device_put(split.images), jax.device_put(split.labels)
    qe = jax.device_get(quantize_weights_int(folded_model, params, qstate, run.quant))
    curves = {}
    for compensation in (False, True):
        if ("on" if compensation else "off") not in ecfg.compensation:
            continue
        vspec = dataclasses.replace(run.variation, compensation=compensation)
        chip, apply = chip_and_apply(folded_model, run.quant, vspec, run.xbar)
        name = curve_name(run.uses["variation"], compensation)
        log.info("Monte Carlo %s: %d chips x %s", name, ecfg.chips, ecfg.sigmas)
        curves[name] = chip_sweep(run, vspec, chip, apply, images, labels, ecfg.sigmas,
                                  (params, qstate, qe, masks_flat), ecfg.seed, ecfg.chips)
    png = Path(workdir) / "accuracy_vs_sigma.png"
    plot_accuracy_vs_sigma(
        [(None, {c: {float(k): v for k, v in per.items()} for c, per in curves.items()},
          fp_accuracy, ecfg.chips)], png, headline_sigma=ecfg.headline_sigma)
    return {"chips": ecfg.chips, "sigmas": list(ecfg.sigmas), "test_images": len(split.labels),
            "headline_sigma": ecfg.headline_sigma,
            "variation": dataclasses.asdict(run.variation), "curves": curves,
            "figure": png.name}


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
        (acc,) = chip_sweep(run, vspec, chip, apply, images, labels, (c.select_sigma,),
                            (params, qstate, qe, masks_flat), seed, c.select_chips).values()
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


def cost_report(run, params, masks_flat: dict | None, scale: str, bits) -> dict:
    """Power/area of the deployed model and its reductions against the references (the
    unstructured reference keeps as many weights per layer, `cost.random_unstructured_masks`)."""
    red = cost_lib.reductions(params, run.xbar, bits, masks_flat or None, scale=scale,
                              cfg=run.cost)
    return cost_lib.cost_summary(red)


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
