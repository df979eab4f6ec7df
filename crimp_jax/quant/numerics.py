"""Quantization numerics: rounding, straight-through estimators, power-of-two scales, fake-quant.

Conventions (docs/method.md section 2):

* A tensor's scale is `s = 2^e`. It is derived from a learned float log2 *threshold* `log2_t`
  (TQT style): `e = ceil(log2_t) - m`, with `m = b - 1` for signed b-bit tensors (weights,
  levels -(2^(b-1)-1) .. 2^(b-1)-1) and `m = b` for unsigned b-bit tensors (activations after
  ReLU, levels 0 .. 2^b - 1). So the representable range just covers the threshold
  `2^ceil(log2_t)`. The ceil has a straight-through gradient (identity).
* In the float-scale ablation (`scale_mode='float'`, LSQ in the log domain) the same formula is
  used without the ceil, so the exponent is a real number: the only difference between the two
  modes is the power-of-two constraint.
* Rounding is round-half-up, `floor(x + 0.5)`. It is what the integer engine's rounding right
  shift `(v + 2^(k-1)) >> k` computes, so fake-quant and engine agree bit for bit.
* Gradients: `round` and `ceil` pass gradients straight through; `clip` passes 1 inside the
  integer range and 0 outside; the threshold's gradient is scaled LSQ-style by
  `1 / sqrt(N * qmax)` (N = elements sharing the scale).

Every function here is pure and jittable; bit widths and modes are static Python values.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SCALE_MODES = ("po2", "float")
# Bit widths the numerics accept. Deployment narrows weights to int8 (see quant.config).
MAX_BITS = 16


def check_bits(bits, signed: bool, what: str = "bit width") -> int:
    """Validates a bit width: signed 2..16 (sign included), unsigned 1..16; returns it as int."""
    lo = 2 if signed else 1
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= MAX_BITS:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{what}={bits!r}: {kind} quantization needs an integer in "
                         f"{lo}..{MAX_BITS}")
    return bits


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """Integer level range (qmin, qmax): signed symmetric or unsigned."""
    check_bits(bits, signed)
    if signed:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def exponent_offset(bits: int, signed: bool) -> int:
    """m in e = ceil(log2_t) - m: the exponent distance between threshold and step size."""
    check_bits(bits, signed)
    return bits - 1 if signed else bits


def round_half_up(x):
    """floor(x + 0.5): the rounding of the integer engine's rounding right shift."""
    return jnp.floor(x + 0.5)


@jax.custom_jvp
def round_ste(x):
    """Round-half-up with a straight-through (identity) gradient."""
    return round_half_up(x)


@round_ste.defjvp
def _round_ste_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return round_half_up(x), t


@jax.custom_jvp
def ceil_ste(x):
    """Ceil with a straight-through (identity) gradient."""
    return jnp.ceil(x)


@ceil_ste.defjvp
def _ceil_ste_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.ceil(x), t


@jax.custom_jvp
def pow2_exact(e):
    """2^e for an integral-valued float32 e in [-126, 127], exact (built from the bit pattern).

    `jnp.exp2` is not guaranteed exact on every backend; power-of-two scales must be.
    Gradient: d 2^e / de = 2^e ln 2.
    """
    e = jnp.asarray(e, jnp.float32)
    bits = (jnp.clip(e, -126, 127).astype(jnp.int32) + 127) << 23
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


@pow2_exact.defjvp
def _pow2_exact_jvp(primals, tangents):
    (e,), (t,) = primals, tangents
    y = pow2_exact(e)
    return y, y * jnp.log(2.0).astype(y.dtype) * t


def pow2(e, scale_mode: str = "po2"):
    """2^e: exact for power-of-two scales, `exp2` for the float-scale ablation."""
    check_scale_mode(scale_mode)
    return pow2_exact(e) if scale_mode == "po2" else jnp.exp2(e)


def check_scale_mode(scale_mode: str) -> str:
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"scale_mode={scale_mode!r}: expected one of {SCALE_MODES}")
    return scale_mode


@jax.custom_vjp
def grad_scale(x, g):
    """Identity forward; multiplies the incoming gradient by g (LSQ gradient scaling)."""
    return x


def _grad_scale_fwd(x, g):
    return x, g


def _grad_scale_bwd(g, ct):
    return ct * g, jnp.zeros_like(g)


grad_scale.defvjp(_grad_scale_fwd, _grad_scale_bwd)


def lsq_grad_factor(num_elements: int, bits: int, signed: bool) -> float:
    """LSQ's 1 / sqrt(N * qmax) for a scale shared by `num_elements` values."""
    return 1.0 / math.sqrt(max(int(num_elements), 1) * qrange(bits, signed)[1])


def scale_exponent(log2_t, bits: int, signed: bool, scale_mode: str = "po2", grad_factor=None):
    """Exponent e of the step size 2^e from a log2 threshold (integral-valued in 'po2' mode)."""
    check_scale_mode(scale_mode)
    log2_t = jnp.asarray(log2_t, jnp.float32)
    if grad_factor is not None:
        log2_t = grad_scale(log2_t, jnp.asarray(grad_factor, jnp.float32))
    e = ceil_ste(log2_t) if scale_mode == "po2" else log2_t
    return e - exponent_offset(bits, signed)


def clip_ste(q, qmin: int, qmax: int):
    """Clips integer levels; gradient 1 where qmin <= q <= qmax, 0 outside."""
    return jnp.where(q > qmax, float(qmax), jnp.where(q < qmin, float(qmin), q))


def quantize_levels(x, e, bits: int, signed: bool, scale_mode: str = "po2"):
    """x -> integer levels clip(round(x / 2^e)) as float (STE gradients w.r.t. x and e)."""
    qmin, qmax = qrange(bits, signed)
    return clip_ste(round_ste(x * pow2(-e, scale_mode)), qmin, qmax)


def fake_quant(x, e, bits: int, signed: bool, scale_mode: str = "po2"):
    """Quantize-dequantize: 2^e * clip(round(x / 2^e)). Differentiable (STE / LSQ)."""
    return quantize_levels(x, e, bits, signed, scale_mode) * pow2(e, scale_mode)
