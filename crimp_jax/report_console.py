"""One-screen console summary of a finished run (everything read from the summary dict)."""

from __future__ import annotations


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def summary_lines(summary: dict) -> list:
    dev = summary.get("device", {})
    acc = summary.get("accuracy", {})
    lines = [
        f"model              {summary['model']} ({summary['num_params']:,} params), "
        f"method {summary.get('ablation', 'fp')}",
        f"data               {summary['train_images']} train / {summary['test_images']} test images",
        f"float accuracy     {_pct(acc.get('fp'))}",
    ]
    if summary.get("quant"):
        q = summary["quant"]
        lines.append(f"quantized          {_pct(acc.get('fake_quant'))} (W{q['weight_bits']}A"
                     f"{q['act_bits']}, {q['scale']} scales, fake-quant)")
    if acc.get("integer_engine") is not None:
        lines.append(f"integer engine     {_pct(acc['integer_engine'])} "
                     f"(agreement {_pct(acc['engine_agreement'])}, "
                     f"max |logit diff| {acc['max_logit_diff']:g})")
    mc = summary.get("montecarlo")
    if mc:
        h = str(mc["headline_sigma"]).rstrip("0").rstrip(".") if mc["headline_sigma"] else "0"
        for name, curve in mc["curves"].items():
            s = curve.get(h) or curve.get(str(mc["headline_sigma"]))
            if s:
                lines.append(f"sigma {h:<4} {name:<12} {_pct(s['mean'])} +/- {_pct(s['std'])} "
                             f"(min {_pct(s['min'])}, {s['n_chips']} chips)")
    pr = summary.get("prune")
    if pr:
        t = pr["totals"]
        lines.append(f"sparsity           {_pct(pr['sparsity'])} of pruned layers; crossbars "
                     f"{t['tiles_dense']} -> {t['tiles_after']} "
                     f"({t['arrays_dense']} -> {t['arrays_after']} physical arrays)")
    cost = summary.get("cost")
    if cost:
        pw, ar = cost["power_reduction"], cost["area_reduction"]
        lines.append(f"vs original        {pw['original']:.1f}x less power, "
                     f"{ar['original']:.1f}x less area (computing units)")
    epoch_s = summary.get("epoch_s_median")  # None when the float stage was reused
    stage = ("float stage reused" if epoch_s is None
             else f"float stage {epoch_s:.2f} s/epoch")
    lines.append(f"time               {summary['wall_s']:.0f} s on {dev.get('kind')} "
                 f"({dev.get('platform')}); {stage}")
    return lines


def print_summary(summary: dict) -> None:
    if summary.get("interrupted"):
        print(f"run interrupted during stage {summary.get('stage')}; rerun to resume")
        return
    print("\n".join(["=" * 72, *summary_lines(summary), "=" * 72]))
