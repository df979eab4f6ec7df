"""Integer arithmetic shared by the converter and the engine (no floating point).

`rounding_shift` is requantization: a rounding arithmetic right shift `(v + 2^(k-1)) >> k`
(round half up, as the fake-quant forward's `floor(x + 0.5)`); a negative amount is an exact
left shift. `conv_int` is an integer 2-D convolution with explicit padding, as im2col
(shifted slices + one int32 `dot_general`; feature order (i, j, cin) matches an HWIO kernel
reshaped to a matrix) or as `lax.conv_general_dilated` on int32 ('conv', XLA:CPU only: XLA:GPU
answers UNIMPLEMENTED for integer convolutions, seen with jax 0.11.2 on an H200).
`conv_rows_dot` is the share of a convolution that one row tile of its crossbars computes,
float32 or int32 (the crossbar-faithful product, `crimp_jax.periphery`).
`Checker` bounds every accumulator the converter emits to a signed width.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from crimp_jax.xbar.view import matrix_to_kernel

CONV_IMPLS = ("conv", "im2col")
CONV_DN = ("NHWC", "HWIO", "NHWC")


def rounding_shift(v, k):
    """floor(v / 2^k + 1/2) for int32 v and int32 shift amounts k (k <= 0: v * 2^-k, exact)."""
    k = jnp.asarray(k, jnp.int32)
    kp = jnp.maximum(k, 0)
    kn = jnp.maximum(-k, 0)
    half = jnp.right_shift(jnp.left_shift(jnp.int32(1), kp), 1)
    return jnp.left_shift(jnp.right_shift(v + half, kp), kn)


def conv_int(x, w, strides, padding, impl: str = "im2col"):
    """int32 NHWC convolution of int32 `x` with an int32 HWIO kernel `w`; `strides` (sh, sw),
    `padding` ((top, bottom), (left, right)) of zeros."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"impl={impl!r}: expected one of {CONV_IMPLS}")
    strides = tuple(int(s) for s in strides)
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    if impl == "conv":
        return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=CONV_DN,
                                        preferred_element_type=jnp.int32)
    kh, kw, cin, cout = w.shape
    patches = _patches(x, kh, kw, strides, padding)  # (n, ho, wo, kh*kw*cin), order (i, j, cin)
    return lax.dot_general(patches, w.reshape(kh * kw * cin, cout), (((3,), (0,)), ((), ())),
                           preferred_element_type=jnp.int32)


def _patches(x, kh, kw, strides, padding):
    """(n, ho, wo, kh*kw*cin) shifted slices of NHWC `x`, feature order (i, j, cin)."""
    (pt, pb), (pl, pr) = padding
    sh, sw = strides
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (xp.shape[1] - kh) // sh + 1
    wo = (xp.shape[2] - kw) // sw + 1
    cols = [xp[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
            for i in range(kh) for j in range(kw)]
    return jnp.concatenate(cols, axis=-1)


def conv_rows_dot(x, w_rows, lo: int, hi: int, kernel_hw, strides, padding,
                  impl: str = "im2col"):
    """The part of a convolution that layer-matrix rows [lo, hi) compute: (n, ho, wo, N) =
    sum over rows g in [lo, hi) of (the input x drives on row g) * w_rows[g - lo], rows in the
    crossbar view's order g = cin*kh*kw + i*kw + j (`crimp_jax.xbar.view`), w_rows (hi - lo, N).

    One convolution of the input channels the rows touch (cin from lo // (kh*kw) to the one
    holding row hi - 1), with the rows outside [lo, hi) of the boundary channels zero: no
    patches are materialised, so a row tile of a crossbar costs one small convolution. Exact
    for integer-valued inputs (float32 sums below 2^24; int32 through `conv_int(impl)`)."""
    kh, kw = (int(k) for k in kernel_hw)
    k2 = kh * kw
    c_lo, c_hi = lo // k2, -(-hi // k2)
    w = jnp.pad(w_rows, ((lo - c_lo * k2, c_hi * k2 - hi), (0, 0)))
    kernel = matrix_to_kernel(w, (kh, kw, c_hi - c_lo, w.shape[-1]))
    strides = tuple(int(s) for s in strides)
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    xs = x[..., c_lo:c_hi]
    if jnp.issubdtype(x.dtype, jnp.integer):
        return conv_int(xs, kernel.astype(jnp.int32), strides, padding, impl)
    return lax.conv_general_dilated(xs, kernel.astype(x.dtype), strides, padding,
                                    dimension_numbers=CONV_DN)


def signed_width(bound) -> int:
    """Bits of a signed integer holding every value in [-bound, bound] (sign included)."""
    return int(np.max(np.asarray(bound, dtype=object))).bit_length() + 1


class Checker:
    """Records the widest signed width per quantity and refuses one above `max_bits`."""

    def __init__(self, max_bits: int):
        self.max_bits = max_bits
        self.widths = {}

    def __call__(self, bound, what: str) -> int:
        width = signed_width(bound)
        self.widths[what] = max(width, self.widths.get(what, 0))
        if width > self.max_bits:
            raise ValueError(f"{what}: worst-case accumulator needs {width} bits (|v| <= "
                             f"{int(np.max(bound))}), above the {self.max_bits}-bit limit; "
                             "lower this layer's bit widths (quant.weight_rules, "
                             "quant.act_rules, quant.weight_bits, quant.act_bits) or, for a "
                             "residual add, quant.max_residual_shift")
        return width


def integral(x, what: str) -> np.ndarray:
    """int64 copy of `x`, refusing non-integral values (non-power-of-two scales)."""
    x = np.asarray(jax.device_get(x), np.float64)
    r = np.round(x)
    if not np.all(r == x):
        raise ValueError(f"{what}: non-integral values; the integer engine needs power-of-two "
                         "scales (quant.scale_mode='po2')")
    return r.astype(np.int64)
