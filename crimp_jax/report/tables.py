"""Markdown sections of a report, one function per section: `section(runs) -> markdown`.

Each returns the section body (tables plus a note naming the runs that lack its data), or a
single note when no run has it. Accuracies are fractions in summary.json and percentages here;
power is in mW, area in mm^2, as `crimp_jax.cost.cost_summary` stores them.
"""

from __future__ import annotations

from typing import Sequence

from crimp_jax.config import METHOD_LABELS
from crimp_jax.report.runs import Run
from crimp_jax.summary import CURVE_LABELS, sigma_key

SCENARIOS = {
    "original": "original (dense, FP32 scales)",
    "quant_float": "quantized (dense, float scales on INT32 multipliers)",
    "unstructured": "unstructured pruning (+ data-alignment units)",
}
NA = "n/a"


def pct(value, digits: int = 2) -> str:
    return NA if value is None else f"{100.0 * value:.{digits}f}%"


def num(value, fmt: str = "{:,}") -> str:
    return NA if value is None else fmt.format(value)


def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def missing_note(runs: Sequence[Run], have: Sequence[Run], what: str) -> str:
    """'' if every run has the data; otherwise a note naming the runs without it."""
    lacking = [r.name for r in runs if r not in have]
    if not lacking:
        return ""
    return f"\n_Not in {', '.join(lacking)}: summary.json has no {what}._\n"


def method_label(run: Run) -> str:
    m = run.summary.method
    return NA if m is None else f"{m} ({METHOD_LABELS[m]})" if m in METHOD_LABELS else str(m)


def runs_section(runs: Sequence[Run]) -> str:
    """Where each number comes from: workdir, command, device, date, data, time."""
    rows, commands = [], []
    for r in runs:
        dev = r.get("device", {})
        device = (f"{dev.get('kind', NA)} x{dev.get('count', '?')} ({dev.get('platform', NA)}, "
                  f"jax {dev.get('jax', NA)})") if dev else NA
        wall = r.get("wall_s")
        rows.append([r.name, f"`{r.path}`", r.get("model", NA), num(r.get("num_params")),
                     method_label(r), num(r.get("epochs")),
                     f"{num(r.get('train_images'))} / {num(r.get('test_images'))}", device,
                     r.get("date", NA), NA if wall is None else f"{wall / 60:.1f} min"])
        commands.append(f"- {r.name}: `{r.get('command', NA)}`")
        commands += [f"  - note: {n}" for n in r.notes]
    return (table(["run", "workdir", "model", "parameters", "method", "epochs",
                   "train / test images", "device", "date", "wall time"], rows)
            + "\nCommands:\n\n" + "\n".join(commands) + "\n")


def accuracy_section(runs: Sequence[Run]) -> str:
    """One row per run: float, fake-quant, integer engine, sparsity, deployed accuracy."""
    rows = []
    for r in runs:
        fp, deployed = r.get("accuracy.fp"), r.get("test_accuracy")
        delta = NA if fp is None or deployed is None else f"{100.0 * (deployed - fp):+.2f}"
        quant = r.get("quant")
        qdesc = (f"W{quant.get('weight_bits')}/A{quant.get('act_bits')} {quant.get('scale')}"
                 if quant else "float")
        rows.append([r.name, method_label(r), qdesc, pct(fp), pct(r.get("accuracy.fake_quant")),
                     pct(r.get("accuracy.integer_engine")),
                     pct(r.get("accuracy.engine_agreement")),
                     num(r.get("accuracy.max_logit_diff"), "{:.3g}"),
                     pct(r.get("prune.sparsity")), pct(deployed), delta])
    note = ("\nFP: the float model before quantization; fake-quant: the quantized model "
            "simulated in float; integer engine: the integer-only crossbar engine "
            "(agreement: share of test images where it predicts the fake-quant class); "
            "deployed: the model the run ships (quantized / pruned per its method); "
            "n/a: stage not run.\n")
    return table(["run", "method", "quantization", "FP", "fake-quant", "integer engine",
                  "engine agreement", "max logit diff", "sparsity", "deployed",
                  "deployed - FP (points)"], rows) + note


def stages_section(runs: Sequence[Run]) -> str:
    have = [r for r in runs if r.get("stages")]
    if not have:
        return "_No run has per-stage results (summary.json 'stages')._\n"
    rows = [[r.name, s.get("stage", NA), num(s.get("epochs")),
             num(s.get("epoch_s_median"), "{:.2f}"), pct(s.get("test_accuracy"))]
            for r in have for s in r.get("stages")]
    return (table(["run", "stage", "epochs", "median s / epoch", "test accuracy"], rows)
            + missing_note(runs, have, "'stages'"))


def montecarlo_section(runs: Sequence[Run]) -> str:
    have = [r for r in runs if r.summary.curves()]
    if not have:
        return "_No run has Monte Carlo results (summary.json 'montecarlo')._\n"
    rows = []
    for r in have:
        fp = r.summary.fp_accuracy
        for curve, per_sigma in r.summary.curves().items():
            for sigma, s in per_sigma.items():
                mean = s.get("mean")
                drop = NA if fp is None or mean is None else f"{100.0 * (mean - fp):+.2f}"
                rows.append([r.name, f"{curve} ({CURVE_LABELS.get(curve, 'as named by the run')})",
                             sigma_key(sigma), num(r.get("montecarlo.chips")),
                             num(r.get("montecarlo.test_images")), pct(mean),
                             pct(s.get("std")), pct(s.get("min")), pct(s.get("p5")), drop])
    note = ("\nsigma: standard deviation of the log-normal write variation per cell; each row is "
            "over `chips` programmed chips, each evaluated on `images` test images (the whole "
            "test set unless the run chose a class-balanced subset); p5: 5th percentile chip; "
            "last column: mean minus the run's FP accuracy.\n")
    return (table(["run", "curve", "sigma", "chips", "images", "mean", "std", "min", "p5",
                   "mean - FP (points)"], rows) + note
            + missing_note(runs, have, "'montecarlo'"))


def sparsity_section(runs: Sequence[Run]) -> str:
    from crimp_jax.prune.report import (
        markdown_table,  # per-layer table of the pruning report
    )

    have = [r for r in runs if r.get("prune")]
    if not have:
        return "_No run is pruned (summary.json 'prune')._\n"
    out = [table(["run", "target sparsity", "achieved sparsity", "weights", "weights kept",
                  "kernel groups kept", "crossbar groups kept"],
                 [[r.name, pct(r.get("prune.target_sparsity")), pct(r.get("prune.sparsity")),
                   num(r.get("prune.totals.weights")), num(r.get("prune.totals.weights_kept")),
                   f"{num(r.get('prune.totals.kernel_groups_kept'))} / "
                   f"{num(r.get('prune.totals.kernel_groups'))}",
                   f"{num(r.get('prune.totals.crossbar_groups_kept'))} / "
                   f"{num(r.get('prune.totals.crossbar_groups'))}"] for r in have])]
    for r in have:
        layers = r.get("prune.layers")
        if layers:
            out.append(f"\nPer layer, {r.name} (tiles: logical crossbars; arrays: physical, "
                       "x slices x polarities):\n\n" + markdown_table(layers))
    return "".join(out) + missing_note(runs, have, "'prune'")


def crossbar_totals(run: Run):
    """(source, dense tiles, tiles after, dense arrays, arrays after) or None."""
    t = run.get("prune.totals")
    if t and t.get("tiles_dense") is not None:
        return ("pruning report", t.get("tiles_dense"), t.get("tiles_after"),
                t.get("arrays_dense"), t.get("arrays_after"))
    c = run.get("cost")
    if c and c.get("dense_tiles") is not None:
        per_layer = c.get("per_layer_crossbars") or {}
        dense_arrays = sum(v[0] for v in per_layer.values()) if per_layer else None
        return ("cost model", c.get("dense_tiles"), c.get("tiles"), dense_arrays,
                c.get("crossbars"))
    return None


def crossbars_section(runs: Sequence[Run]) -> str:
    have = [r for r in runs if crossbar_totals(r)]
    if not have:
        return "_No run has crossbar counts (summary.json 'prune' or 'cost')._\n"
    rows = []
    for r in have:
        src, td, ta, ad, aa = crossbar_totals(r)
        ratio = NA if not (td and ta) else f"{td / ta:.2f}x"
        rows.append([r.name, src, num(td), num(ta), num(ad), num(aa), ratio])
    return (table(["run", "source", "dense tiles", "tiles after re-packing", "dense arrays",
                   "arrays after", "reduction (tiles)"], rows)
            + "\nTile: one logical crossbar (rows x columns of the crossbar config); array: one "
              "physical crossbar (a tile needs one per weight slice and per polarity).\n"
            + missing_note(runs, have, "'prune' or 'cost'"))


def cost_section(runs: Sequence[Run]) -> str:
    have = [r for r in runs if r.get("cost")]
    if not have:
        return "_No run has a hardware cost (summary.json 'cost')._\n"
    rows = []
    for r in have:
        c = r.get("cost")
        rows.append([r.name, "CRIMP (this run)", num(c.get("power_mw"), "{:,.1f}"),
                     num(c.get("area_mm2"), "{:.4f}"), "1x", "1x"])
        for ref, power in (c.get("reference_power_mw") or {}).items():
            pr = (c.get("power_reduction") or {}).get(ref)
            ar = (c.get("area_reduction") or {}).get(ref)
            rows.append([r.name, SCENARIOS.get(ref, ref), num(power, "{:,.1f}"),
                         num((c.get("reference_area_mm2") or {}).get(ref), "{:.4f}"),
                         num(pr, "{:.2f}x"), num(ar, "{:.2f}x")])
    return (table(["run", "scenario", "computing power (mW)", "computing area (mm^2)",
                   "power reduction (scenario / CRIMP)", "area reduction (scenario / CRIMP)"],
                  rows)
            + "\nComputing power and area: crossbars, ADCs, DACs, sample & hold, shift & add, "
              "scale multipliers and alignment units (crimp_jax/cost; buffers and eDRAM not "
              "counted).\n" + missing_note(runs, have, "'cost'"))


def periphery_section(runs: Sequence[Run]) -> str:
    """ADC/DAC-bit sweeps (accuracy next to ideal ADCs, the periphery's power and area saving)
    and drift sweeps (accuracy vs read time, compensation off and on)."""
    out = []
    rows = []
    for r in runs:
        mc = r.get("montecarlo") or {}
        for kind in ("adc_sweep", "dac_sweep"):
            sw = mc.get(kind)
            if not sw:
                continue
            for skey, per_bits in sw["accuracy"].items():
                ideal = (sw.get("ideal") or {}).get(skey, {}).get("mean")
                for b in sorted(per_bits, key=int):
                    s = per_bits[b]
                    cost = (sw.get("cost") or {}).get(b) or {}
                    saving = cost.get("periphery_saving", {})
                    delta = NA if ideal is None else f"{100.0 * (s['mean'] - ideal):+.2f}"
                    rows.append([r.name, kind.split("_")[0].upper(), b, skey,
                                 num(s["n_chips"]), pct(s["mean"]), pct(s["std"]), pct(ideal),
                                 delta, num(saving.get("power_x"), "{:.2f}x"),
                                 num(saving.get("area_x"), "{:.2f}x")])
            if kind == "adc_sweep":
                within = ", ".join(f"sigma {k}: {v if v is not None else 'none swept'}"
                                   for k, v in sw["within_0.5_points"].items())
                out.append(f"- {r.name}: fewest ADC bits within 0.5 points of ideal ADCs "
                           f"({sw['curve']}, {sw['dac_bits']}-bit DACs, {sw['read']} reads, "
                           f"full scale {sw['full_scale']:g}): {within}\n")
    if rows:
        out.insert(0, table(["run", "swept", "bits", "sigma", "chips", "mean", "std",
                             "ideal ADCs", "- ideal (points)", "periphery power saving",
                             "area saving"], rows))
        out.insert(1, "\nperiphery saving: power (area) of the deployed design with 8-bit ADCs "
                      "and 1-bit DACs over that with the swept resolution "
                      "(`crimp_jax/cost/components.json`).\n\n")
    drows = []
    for r in runs:
        d = (r.get("montecarlo") or {}).get("drift_sweep")
        if not d:
            continue
        for curve, per_t in d["curves"].items():
            for t in sorted(per_t, key=float):
                s = per_t[t]
                drows.append([r.name, f"{curve} ({CURVE_LABELS.get(curve, curve)})", t,
                              f"{d['sigma']:g}", num(s["n_chips"]), pct(s["mean"]),
                              pct(s["std"]), pct(s["min"])])
    if drows:
        out.append("\n" + table(["run", "curve", "read time (s)", "sigma", "chips", "mean",
                                 "std", "min"], drows))
        out.append("\nDrift: G(t) = G(t0) (t / t0)^(-nu), nu per cell (`variation` drift "
                   "fields); compensation gains are computed from an all-ones read at the read "
                   "time.\n")
    if not out:
        return "_No run has periphery sweeps (summary.json 'montecarlo.adc_sweep', " \
               "'dac_sweep' or 'drift_sweep')._\n"
    return "".join(out)
