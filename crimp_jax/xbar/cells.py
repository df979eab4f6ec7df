"""Integer weights -> RRAM cell levels: bit-slices and polarities (and back).

Axis glossary (on top of `view.py`'s):
  slice     bit-slice s of a weight magnitude, least significant first; place value 2^(s*bpc)
  polarity  0 = positive array, 1 = negative array (differential); a single array otherwise
  ...       the shape of `q` (any layout: kernel HWIO, matrix, crossbar tiles)

Storage schemes (`XbarSpec.differential`):
  differential  q = sum_s 2^(s*bpc) * (pos_s - neg_s), pos = slices of max(q, 0), neg = slices
                of max(-q, 0); every level lies in [0, 2^bpc - 1]; the sign is the choice of array.
  offset        u = q + 2^(b-1) in [1, 2^b - 1] is stored in one array, q = sum_s 2^(s*bpc) u_s
                - 2^(b-1); the constant offset is subtracted digitally (times the input sum).

All functions are pure `jnp`, take `q` as integer-valued floats or ints and return float32 levels
(exact: every value involved is a small integer). They carry no gradient (levels are discrete).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from crimp_jax.xbar.config import XbarSpec, num_slices, xbar_spec


def place_values(spec: XbarSpec, weight_bits: int) -> jnp.ndarray:
    """(slice,) float32 place values 2^(s*bits_per_cell) of `weight_bits`-bit weights."""
    spec = xbar_spec(spec)
    return jnp.asarray([2.0 ** (s * spec.bits_per_cell)
                        for s in range(num_slices(spec, weight_bits))], jnp.float32)


def storage_offset(spec: XbarSpec, weight_bits: int) -> int:
    """Integer added before slicing: 0 for differential, 2^(b-1) for offset storage."""
    spec = xbar_spec(spec)
    return 0 if spec.differential else 2 ** (weight_bits - 1)


def _slice_magnitude(mag, spec: XbarSpec, weight_bits: int):
    """Non-negative integers `mag` (...) -> (slice, ...) levels in [0, 2^bpc - 1]."""
    mag = mag.astype(jnp.int32)
    base = 2 ** spec.bits_per_cell
    out = [(mag // (base ** s)) % base for s in range(num_slices(spec, weight_bits))]
    return jnp.stack(out).astype(jnp.float32)


def slice_weights(q, spec: XbarSpec | dict, weight_bits: int) -> jnp.ndarray:
    """Signed `weight_bits`-bit integer weights q (...) -> levels (slice, polarity, ...).

    Differential: polarity axis has 2 entries (pos, neg); offset storage: 1 entry holding the
    slices of q + 2^(b-1). Raises if q is outside the signed `weight_bits` range (only
    checked when q is concrete).
    """
    spec = xbar_spec(spec)
    qmax = 2 ** (weight_bits - 1) - 1
    try:  # a range check when q is concrete; under jit it is skipped
        lo, hi = (float(jnp.min(q)), float(jnp.max(q))) if q.size else (0.0, 0.0)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        lo, hi = -qmax, qmax
    if lo < -qmax or hi > qmax:
        raise ValueError(f"q spans [{lo}, {hi}]: outside the {weight_bits}-bit signed "
                         f"range [{-qmax}, {qmax}]")
    q = jnp.round(jax.lax.stop_gradient(q)).astype(jnp.int32)
    if spec.differential:
        pos = _slice_magnitude(jnp.maximum(q, 0), spec, weight_bits)
        neg = _slice_magnitude(jnp.maximum(-q, 0), spec, weight_bits)
        return jnp.stack([pos, neg], axis=1)
    return _slice_magnitude(q + storage_offset(spec, weight_bits), spec, weight_bits)[:, None]


def combine_slices(levels, spec: XbarSpec | dict, weight_bits: int) -> jnp.ndarray:
    """Inverse of `slice_weights`: levels (slice, polarity, ...) -> float q (...).

    Works on any real-valued levels (e.g. read-out conductances in level units), so it is also
    the ideal-ADC shift-and-add of a crossbar.
    """
    spec = xbar_spec(spec)
    pv = place_values(spec, weight_bits).reshape((-1,) + (1,) * (levels.ndim - 1))
    per_pol = jnp.sum(levels * pv, axis=0)  # (polarity, ...)
    if spec.differential:
        return per_pol[0] - per_pol[1]
    return per_pol[0] - storage_offset(spec, weight_bits)


def max_level(spec: XbarSpec | dict) -> int:
    """Highest level a cell stores: 2^bits_per_cell - 1."""
    return 2 ** xbar_spec(spec).bits_per_cell - 1
