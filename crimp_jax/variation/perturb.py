"""`perturb`: quantized kernels {path: (q, e)} -> one chip's effective float kernels.

This is the variation step of the CRIMP pipeline, used both in training (fresh chip per step,
`effective = perturb(quantize(mask(latent)), fold_in(seed, step))`) and in Monte Carlo
evaluation (one chip per key, `chip_key(seed, chip_index)`).

Random streams are derived, never stored: the layer key is `fold_in(key, path_id(path))`, so a
chip is a pure function of (key, layer path) and does not depend on batch size, device count or
which other layers are perturbed.

Straight-through rule. A chip's read-back is eff = q * ratio + additive (see
`device.layer_effective`). The forward value is exactly eff * 2^e; the backward pass treats
ratio and additive as constants, so d w / d q = ratio * 2^e (the weight's own variation factor,
compensation gain included) and d w / d e = w * ln 2. Gradients reach the latent weights through
the quantizer's own straight-through estimator on q.
"""

from __future__ import annotations

import functools
import zlib
from typing import Callable, Mapping

import jax
import jax.numpy as jnp

from crimp_jax.utils.paths import flatten, unflatten
from crimp_jax.variation.config import VariationSpec, variation_spec
from crimp_jax.variation.device import layer_effective
from crimp_jax.xbar.config import xbar_spec


def path_id(path: str) -> int:
    """Stable 31-bit id of a parameter path (crc32), the fold_in tag of its random stream."""
    return zlib.crc32(path.encode("utf-8")) & 0x7FFFFFFF


def chip_key(seed_key, chip_index):
    """Key of programmed chip `chip_index` (int or traced int): fold_in(seed_key, chip_index)."""
    return jax.random.fold_in(seed_key, chip_index)


def pow2(e):
    """2^e, exact in the forward pass, with the gradient ln2 * 2^e w.r.t. a float e."""
    e = jnp.asarray(e)
    if jnp.issubdtype(e.dtype, jnp.integer):
        return jnp.ldexp(jnp.ones(e.shape, jnp.float32), e.astype(jnp.int32))
    exact = jnp.ldexp(jnp.ones(e.shape, jnp.float32),
                      jnp.round(jax.lax.stop_gradient(e)).astype(jnp.int32))
    smooth = jnp.exp2(e.astype(jnp.float32))
    return exact + (smooth - jax.lax.stop_gradient(smooth))


def perturb(qe: Mapping[str, tuple], key, vcfg, spec, masks: Mapping | None = None, *,
            sigma=None, read_key=None) -> dict:
    """One chip's effective float kernels, differentiable w.r.t. q (and e) by straight-through.

    Args:
      qe: {path: (q, e)}: q integer-valued float kernel in the signed `spec.weight_bits` range,
        e integer exponent (scalar, or per output column: broadcast against the last axis);
        the intended weight is q * 2^e.
      key: the chip (or training-step / draw) key.
      vcfg: `variation` config block (ConfigDict, dict or VariationSpec).
      spec: `xbar` config block (ConfigDict, dict or XbarSpec).
      masks: optional {path: 0/1 kernel-shaped mask}; paths missing from it are unmasked.
      sigma: optional traced override of vcfg.sigma (sweeps compile once).
      read_key: optional key of the per-inference read noise (default: derived from `key`).

    Returns:
      {path: float32 kernel}; with ideal devices (and no sigma override) exactly q * 2^e.
    """
    vspec: VariationSpec = variation_spec(vcfg)
    spec = xbar_spec(spec)
    masks = {} if masks is None else masks
    out = {}
    for path, (q, e) in qe.items():
        mask = masks.get(path)
        scale = pow2(e)
        qm = q if mask is None else q * mask
        if sigma is None and vspec.is_ideal:
            out[path] = qm * scale
            continue
        pid = path_id(path)
        rkey = None if read_key is None else jax.random.fold_in(read_key, pid)
        eff, ratio = layer_effective(q, jax.random.fold_in(key, pid), spec, vspec, mask,
                                     sigma, rkey)
        ratio = jax.lax.stop_gradient(ratio)
        additive = jax.lax.stop_gradient(eff - jax.lax.stop_gradient(qm) * ratio)
        out[path] = (qm * ratio + additive) * scale
    return out


def replace_kernels(params: Mapping, kernels: Mapping[str, jnp.ndarray]) -> dict:
    """Nested params with the leaves at the given slash paths replaced (every path must exist)."""
    flat = flatten(params)
    missing = sorted(set(kernels) - set(flat))
    if missing:
        raise KeyError(f"paths {missing} are not in params; params have {sorted(flat)}")
    flat.update(kernels)
    return unflatten(flat)


def chip_params_fn(vcfg, spec) -> Callable:
    """chip_params(key, params, qe, masks, sigma) -> params with one chip's kernels, for
    `evaluate.evaluate_chips(..., chip_args=(params, qe, masks))` / `sweep_sigmas`.

    The same (vcfg, spec) returns the same function object, so compiled programs are reused.
    `masks` may be None; `sigma` overrides vcfg.sigma (traced).
    """
    return _chip_params_fn(variation_spec(vcfg), xbar_spec(spec))


@functools.lru_cache(maxsize=None)
def _chip_params_fn(vspec, spec):
    def chip_params(key, params, qe, masks, sigma=None):
        return replace_kernels(params, perturb(qe, key, vspec, spec, masks, sigma=sigma))
    return chip_params


def draw_keys(key, num_draws: int):
    """(num_draws,) keys fold_in(key, d): draw d is the same whatever num_draws is."""
    return jax.vmap(lambda d: jax.random.fold_in(key, d))(jnp.arange(num_draws))


def average_over_draws(fn: Callable, num_draws: int) -> Callable:
    """fn(key, *args) -> pytree  ==>  g(key, *args) = mean of fn over `num_draws` draw keys.

    The draws are batched with `vmap` (K chips per training step, loss averaged); with
    num_draws == 1 it calls fn(fold_in(key, 0), ...) directly.
    """
    if not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws={num_draws!r}: expected an int >= 1")

    def averaged(key, *args, **kwargs):
        if num_draws == 1:
            return fn(jax.random.fold_in(key, 0), *args, **kwargs)
        outs = jax.vmap(lambda k: fn(k, *args, **kwargs))(draw_keys(key, num_draws))
        return jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), outs)

    return averaged


__all__ = ["path_id", "chip_key", "pow2", "perturb", "replace_kernels", "draw_keys",
           "average_over_draws", "chip_params_fn"]
