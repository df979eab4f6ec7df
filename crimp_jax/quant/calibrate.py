"""Initial quantization state: weight thresholds from max|w|, activation thresholds from a high
percentile of each tap's output on a calibration batch.

The activations are recorded on the float folded graph (weights not yet quantized) at every
tap, inside one jitted call. Thresholds are stored as log2 values clamped to
[-LOG2_FLOOR, LOG2_FLOOR] so that an all-zero tensor (a dead layer) gets a finite threshold.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from crimp_jax.quant.fake import QuantPlan, make_plan
from crimp_jax.utils.paths import flatten, unflatten

LOG2_FLOOR = 20.0


def _log2(v):
    return jnp.clip(jnp.log2(jnp.maximum(v, 2.0 ** -LOG2_FLOOR)), -LOG2_FLOOR, LOG2_FLOOR)


def weight_thresholds(plan: QuantPlan, params) -> dict:
    """{kernel path: log2 max|w|} (per output channel when `per_channel`), nested like params."""
    flat = flatten(params)
    out = {}
    for path in plan.wbits:
        w = jnp.abs(flat[path])
        m = jnp.max(w.reshape(-1, w.shape[-1]), axis=0) if plan.spec.per_channel else jnp.max(w)
        out[path] = _log2(m).astype(jnp.float32)
    return unflatten(out)


def record_taps(graph, params, images, reduce_fn) -> dict:
    """{tap path: reduce_fn(tap output)} from one float forward of the folded graph."""

    def run(p, x):
        rec = {}

        def recorder(tap, y):
            rec[tap] = reduce_fn(y)
            return y

        graph.apply(p, x, act=recorder)
        return rec

    return jax.jit(run)(params, images)


def act_thresholds(plan: QuantPlan, graph, params, images) -> dict:
    """{tap path: {'log2_t': log2 percentile}}, nested for the 'quant' collection."""
    pct = plan.spec.act_percentile
    rec = record_taps(graph, params, images, lambda y: jnp.percentile(y, pct))
    missing = set(plan.abits) - set(rec)
    if missing:
        raise ValueError(f"taps {sorted(missing)} were not reached by the graph")
    return unflatten({f"{tap}/log2_t": _log2(rec[tap]).astype(jnp.float32) for tap in plan.abits})


def init_quant_state(graph, params, calib_images, qcfg) -> dict:
    """qstate = {'act': ..., 'weight': ...} (see crimp_jax.quant.fake) for folded `params`."""
    plan = make_plan(graph, qcfg)
    return {"act": act_thresholds(plan, graph, params, calib_images),
            "weight": weight_thresholds(plan, params)}
