"""One-screen console summary of a finished run (everything read through `crimp_jax.summary`)."""

from __future__ import annotations

from crimp_jax.summary import Summary


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def summary_lines(summary) -> list:
    s = summary if isinstance(summary, Summary) else Summary(summary)
    lines = [
        f"model              {s.model} ({s.get('num_params', 0):,} params), method {s.method}",
        f"data               {s.get('train_images')} train / {s.get('test_images')} test images",
        f"float accuracy     {_pct(s.fp_accuracy)}",
    ]
    q = s.get("quant")
    if q:
        lines.append(f"quantized          {_pct(s.get('accuracy.fake_quant'))} (W{q['weight_bits']}A"
                     f"{q['act_bits']}, {q['scale']} scales, fake-quant)")
    if s.engine_accuracy is not None:
        lines.append(f"integer engine     {_pct(s.engine_accuracy)} "
                     f"(agreement {_pct(s.get('accuracy.engine_agreement'))}, "
                     f"max |logit diff| {s.get('accuracy.max_logit_diff'):g})")
    h = s.headline_sigma
    for name in s.curves():
        st = s.mc(name, h) if h is not None else None
        if st:
            lines.append(f"sigma {h:<4g} {name:<12} {_pct(st['mean'])} +/- {_pct(st['std'])} "
                         f"(min {_pct(st['min'])}, {st['n_chips']} chips)")
    t = s.get("prune.totals")
    if t:
        lines.append(f"sparsity           {_pct(s.sparsity)} of pruned layers; crossbars "
                     f"{t['tiles_dense']} -> {t['tiles_after']} "
                     f"({t['arrays_dense']} -> {t['arrays_after']} physical arrays)")
    pw, ar = s.reduction("power"), s.reduction("area")
    if pw is not None and ar is not None:
        lines.append(f"vs original        {pw:.1f}x less power, {ar:.1f}x less area "
                     "(computing units)")
    epoch_s = s.get("epoch_s_median")  # None when the float stage was reused
    stage = "float stage reused" if epoch_s is None else f"float stage {epoch_s:.2f} s/epoch"
    lines.append(f"time               {s.get('wall_s', 0.0):.0f} s on {s.get('device.kind')} "
                 f"({s.get('device.platform')}); {stage}")
    return lines


def print_summary(summary: dict) -> None:
    if summary.get("interrupted"):
        print(f"run interrupted during stage {summary.get('stage')}; rerun to resume")
        return
    print("\n".join(["=" * 72, *summary_lines(summary), "=" * 72]))
