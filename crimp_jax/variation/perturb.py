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
compensation gain included; 1 for a masked weight) and d w / d e = w * ln 2. Gradients reach
the latent weights through the quantizer's own straight-through estimator on q.
"""

from __future__ import annotations

import zlib
from typing import Mapping

import jax
import jax.numpy as jnp

from crimp_jax.quant.numerics import pow2
from crimp_jax.utils.paths import flatten, unflatten
from crimp_jax.variation.config import VariationSpec, variation_spec
from crimp_jax.variation.device import layer_cells, layer_effective
from crimp_jax.xbar.config import layer_bits, xbar_spec


def path_id(path: str) -> int:
    """Stable 31-bit id of a parameter path (crc32), the fold_in tag of its random stream."""
    return zlib.crc32(path.encode("utf-8")) & 0x7FFFFFFF


def chip_key(seed_key, chip_index):
    """Key of programmed chip `chip_index` (int or traced int): fold_in(seed_key, chip_index)."""
    return jax.random.fold_in(seed_key, chip_index)


def perturb(qe: Mapping[str, tuple], key, vcfg, spec, bits, masks: Mapping | None = None, *,
            knobs: Mapping | None = None, read_key=None, scale_mode: str = "po2") -> dict:
    """One chip's effective float kernels, differentiable w.r.t. q (and e) by straight-through.

    The one way a chip is programmed: training (a fresh chip per step) and Monte Carlo (chip i
    of a seed) both call this with the same arguments, so a trained chip and a deployed chip
    with the same key are the same chip.

    Args:
      qe: {path: (q, e)}: q integer-valued float kernel in the signed range of its layer's
        weight bits, e integer exponent (scalar, or per output column: broadcast against the
        last axis); the intended weight is q * 2^e.
      key: the chip (or training-step / draw) key.
      vcfg: `variation` config block (ConfigDict, dict or VariationSpec).
      spec: `xbar` config block (ConfigDict, dict or XbarSpec).
      bits: {path: weight bits} (the quantization plan's `wbits`) or one int for every layer:
        how many cells (slices) each weight occupies.
      masks: optional {path: 0/1 kernel-shaped mask}; paths missing from it are unmasked. A
        crossbar row whose mask is zero across its tile is not programmed (no cells, no
        faults); masked weights read 0. Masks change the value, not the gradient: the
        straight-through gradient w.r.t. q is the same with and without them.
      knobs: optional {name: traced scalar} overriding `variation` fields (sigma, read_time,
        wire_ratio, ...; `crimp_jax.variation.knobs`), passed unchanged to the device stages:
        sweeps and sigma ramps compile once.
      read_key: optional key of the per-inference read noise (default: derived from `key`).
      scale_mode: how 2^e is formed ('po2' exact, 'float' exp2; `crimp_jax.quant.numerics.pow2`).

    Returns:
      {path: float32 kernel}; with ideal devices (and no knobs) exactly q*mask * 2^e.
    """
    vspec: VariationSpec = variation_spec(vcfg)
    spec = xbar_spec(spec)
    masks = {} if masks is None else masks
    out = {}
    for path, (q, e) in qe.items():
        mask = masks.get(path)
        scale = pow2(e, scale_mode)
        q_const = jax.lax.stop_gradient(q)
        if not knobs and vspec.is_ideal:
            eff, ratio = (q_const if mask is None else q_const * mask), 1.0
        else:
            pid = path_id(path)
            rkey = None if read_key is None else jax.random.fold_in(read_key, pid)
            eff, ratio = layer_effective(q, jax.random.fold_in(key, pid), spec, vspec,
                                         layer_bits(bits, path), mask, knobs, rkey)
            ratio = jax.lax.stop_gradient(ratio)
        additive = jax.lax.stop_gradient(eff - q_const * ratio)
        out[path] = (q * ratio + additive) * scale
    return out


def read_chip(qe: Mapping[str, tuple], key, vcfg, spec, bits, masks: Mapping | None = None, *,
              knobs: Mapping | None = None, read_key=None) -> dict:
    """One chip's cells per layer, {path: (values, programmed)} (`device.layer_cells`), for the
    crossbar-faithful product: the same chip `perturb` programs with the same arguments (same
    per-layer keys), read cell by cell instead of recombined into an effective kernel."""
    vspec: VariationSpec = variation_spec(vcfg)
    spec = xbar_spec(spec)
    masks = {} if masks is None else masks
    out = {}
    for path, (q, _) in qe.items():
        pid = path_id(path)
        rkey = None if read_key is None else jax.random.fold_in(read_key, pid)
        r = layer_cells(q, jax.random.fold_in(key, pid), spec, vspec, layer_bits(bits, path),
                        masks.get(path), knobs, rkey)
        out[path] = (r.values, r.prog)
    return out


def replace_kernels(params: Mapping, kernels: Mapping[str, jnp.ndarray]) -> dict:
    """Nested params with the leaves at the given slash paths replaced (every path must exist)."""
    flat = flatten(params)
    missing = sorted(set(kernels) - set(flat))
    if missing:
        raise KeyError(f"paths {missing} are not in params; params have {sorted(flat)}")
    flat.update(kernels)
    return unflatten(flat)


def draw_keys(key, num_draws: int):
    """(num_draws,) keys fold_in(key, d): draw d is the same whatever num_draws is."""
    return jax.vmap(lambda d: jax.random.fold_in(key, d))(jnp.arange(num_draws))


__all__ = ["path_id", "chip_key", "perturb", "read_chip", "replace_kernels", "draw_keys"]
