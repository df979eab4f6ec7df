"""After training: integer deployment, pruning report and cost.

Each function takes the trained (masked) folded params and returns a JSON-able dict for
`summary.json`; artifacts and figures are written into the workdir. The Monte Carlo section is
`crimp_jax.evaluate.evaluators.monte_carlo` (registered evaluators over programmed chips).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from crimp_jax import cost as cost_lib
from crimp_jax import prune as prune_lib
from crimp_jax.integer import compare_engine, convert, load_artifact, save_artifact
from crimp_jax.periphery import Periphery
from crimp_jax.periphery.reader import crossbar_reader, ideal_reads
from crimp_jax.quant import make_plan, quant_spec
from crimp_jax.utils.paths import flatten


def integer_deploy(workdir: Path, model_name: str, folded_model, params, qstate, qcfg, test,
                   periphery: Periphery | None = None, masks: dict | None = None):
    """Convert -> save -> load -> run the integer engine; compare with the fake-quant model.

    With finite ADCs (`periphery.adc.bits > 0`) the artifact is crossbar-faithful and is
    compared with the fake-quantized ADC path on ideal cells (`periphery.reader`)."""
    faithful = periphery is not None and not periphery.adc.ideal
    if faithful:  # the engine's cells are ideal: no G_min current (adc.g_min_in_range)
        periphery = dataclasses.replace(periphery, on_off_ratio=0.0)
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


def engine_check(workdir: Path, model_name: str, folded_model, params, qstate, qcfg, test,
                 periphery: Periphery | None = None, masks: dict | None = None) -> dict:
    """`integer_deploy` as `summary.json`'s accuracy entries: {integer_engine,
    engine_agreement, engine_exact_logits, max_logit_diff, fake_quant_adc (a crossbar-faithful
    artifact only: the fake-quantized ADC path it is compared with), artifact (its file name
    in `workdir`)}."""
    cmp = integer_deploy(workdir, model_name, folded_model, params, qstate, qcfg, test,
                         periphery, masks)
    out = {"integer_engine": cmp["engine_accuracy"], "engine_agreement": cmp["agreement"],
           "engine_exact_logits": cmp["exact_logits"],
           "max_logit_diff": cmp["max_abs_logit_diff"]}
    if cmp["crossbar_faithful"]:  # the engine runs the ADC datapath (adc.bits > 0)
        out["fake_quant_adc"] = cmp["fake_quant_accuracy"]
    return {**out, "artifact": cmp["artifact"]}


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


def deployed_masks(state) -> dict:
    """{kernel path: mask} a chip is programmed with: the stage state's pruning masks in
    network order ({} for a method that does not prune)."""
    from crimp_jax.train.crimp import masks_of
    return flat_masks(masks_of(state.opt_state))
