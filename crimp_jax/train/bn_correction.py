"""BatchNorm kept at the cost of one convolution per layer: fold with the running statistics,
correct each channel with the batch statistics of the folded layer's own output
(`crimp.batchnorm='corrected'`).

A layer z = conv(x, w) + b followed by BatchNorm (scale g, shift beta, running mean m and
variance v, s = sqrt(v + eps)) is deployed folded with the running statistics:

    y = conv(x, w g / s) + beta + (b - m) g / s  =  (g / s) (z - m) + beta.

In training, BatchNorm normalises z with the batch's statistics instead. Since y is an affine
function of z per channel, those follow from y's batch statistics (mean_y, var_y over batch,
height and width), with no second convolution of x:

    BN_batch(z) = g (z - mean_z) / sqrt(var_z + eps) = c (y - mean_y) + beta,
    c = |g| / sqrt(var_y + eps g^2 / s^2),        mean_z = m + (mean_y - beta) s / g,
                                                   var_z  = var_y s^2 / g^2.

So the step trains the fake-quantized layer that is deployed (kernel w g / s, quantized) and
its output, centred and rescaled per channel, is what BatchNorm with batch statistics would
give (the correction of Krishnamoorthi 2018, section 3.2.1, with the statistics taken from the
folded output rather than from a second, float convolution). Gradients flow through mean_y and
var_y as through BatchNorm's. The running statistics follow mean_z and var_z with
`crimp.bn_momentum`; a channel whose scale g is below 1e-6 in magnitude keeps its running
statistics (its folded output carries no information about z), and such a channel's c is 0,
so an exactly zero scale stays zero (a zero-initialised residual scale is moved by the float
stage first). Over the last `crimp.bn_freeze_epochs` the correction is off (c (y - mean_y) +
beta becomes y) and the statistics stop: the step then trains exactly the deployed network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from crimp_jax.utils.paths import flatten, unflatten

_TINY_SCALE = 1e-6


def bn_layers(graph, latent, running) -> dict:
    """{layer name: (bn path, g, beta, s^2 = running var + eps, eps)} of the graph's layers
    followed by a BatchNorm, from the BN model's params `latent` and `running` statistics."""
    p, st = flatten(latent), flatten(running)
    out = {}
    for op in graph.layers:
        bn = op.get("bn")
        if not bn:
            continue
        n = st[f"{bn}/var"].shape[0]
        g = p[f"{bn}/scale"] if op["bn_scale"] else jnp.ones(n, jnp.float32)
        beta = p[f"{bn}/bias"] if op["bn_bias"] else jnp.zeros(n, jnp.float32)
        eps = float(op["bn_epsilon"])
        out[op["name"]] = (bn, g, beta, jax.lax.stop_gradient(st[f"{bn}/var"]) + eps, eps)
    return out


def corrector(layers: dict, active, record: dict):
    """`post(op, y)` for `Graph.apply`: the correction above where `active` (a traced bool),
    the folded output y unchanged otherwise; each corrected layer's (mean_y, var_y) lands in
    `record[name]` (return it from the traced function that called the forward)."""

    def post(op, y):
        info = layers.get(op["name"])
        if info is None:
            return y
        _, g, beta, s2, eps = info
        axes = tuple(range(y.ndim - 1))
        mean = jnp.mean(y, axes)
        var = jnp.mean(jnp.square(y - mean), axes)
        record[op["name"]] = (mean, var)
        den = var + eps * jnp.square(g) / s2
        c = jnp.abs(g) * jax.lax.rsqrt(jnp.maximum(den, 1e-30))
        return jnp.where(active, c * (y - mean) + beta, y)

    return post


def running_update(layers: dict, running, record: dict, momentum: float, active):
    """The running statistics after one step: momentum * running + (1 - momentum) * (mean_z,
    var_z) from the recorded (mean_y, var_y) (averaged over a leading axis of chips, if any);
    unchanged where `active` is False and for channels with |g| < 1e-6."""
    st = dict(flatten(running))
    for name, (bn, g, beta, s2, _) in layers.items():
        mean_y, var_y = (jax.lax.stop_gradient(a) for a in record[name])
        if mean_y.ndim > 1:  # (chips, channels)
            mean_y, var_y = mean_y.mean(0), var_y.mean(0)
        g = jax.lax.stop_gradient(g)
        beta = jax.lax.stop_gradient(beta)
        ok = jnp.abs(g) >= _TINY_SCALE
        safe = jnp.where(ok, g, 1.0)
        s = jnp.sqrt(s2)
        m, v = st[f"{bn}/mean"], st[f"{bn}/var"]
        mean_z = m + (mean_y - beta) * s / safe
        var_z = var_y * s2 / jnp.square(safe)
        keep = jnp.logical_or(jnp.logical_not(active), jnp.logical_not(ok))
        st[f"{bn}/mean"] = jnp.where(keep, m, momentum * m + (1.0 - momentum) * mean_z)
        st[f"{bn}/var"] = jnp.where(keep, v, momentum * v + (1.0 - momentum) * var_z)
    return unflatten(st)
