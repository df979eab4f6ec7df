"""Initial quantization state: weight thresholds from max|w|, activation thresholds from a high
percentile of each Tap's output on a calibration batch.

The activations are recorded on the float folded model (weights not yet quantized) by a flax
method interceptor, inside one jitted call. Thresholds are stored as log2 values clamped to
[-LOG2_FLOOR, LOG2_FLOOR] so that an all-zero tensor (a dead layer) gets a finite threshold.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from crimp_jax.models.layers import Tap
from crimp_jax.quant.fake import QuantPlan, _tap_path, make_plan
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


def record_taps(model, params, images, reduce_fn) -> dict:
    """{tap path: reduce_fn(tap output)} from one float forward of the folded model."""

    def run(p, x):
        rec = {}

        def recorder(next_fun, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            if isinstance(context.module, Tap) and context.method_name == "__call__":
                rec[_tap_path(context.module)] = reduce_fn(y)
            return y

        with nn.intercept_methods(recorder):
            model.apply({"params": p}, x)
        return rec

    return jax.jit(run)(params, images)


def act_thresholds(plan: QuantPlan, model, params, images) -> dict:
    """{tap path: {'log2_t': log2 percentile}}, nested for the 'quant' collection."""
    pct = plan.spec.act_percentile
    rec = record_taps(model, params, images, lambda y: jnp.percentile(y, pct))
    missing = set(plan.abits) - set(rec)
    if missing:
        raise ValueError(f"taps {sorted(missing)} were not called by the model")
    return unflatten({f"{tap}/log2_t": _log2(rec[tap]).astype(jnp.float32) for tap in plan.abits})


def init_quant_state(model, params, calib_images, qcfg) -> dict:
    """qstate = {'act': ..., 'weight': ...} (see crimp_jax.quant.fake) for folded `params`."""
    plan = make_plan(model, qcfg)
    return {"act": act_thresholds(plan, model, params, calib_images),
            "weight": weight_thresholds(plan, params)}
