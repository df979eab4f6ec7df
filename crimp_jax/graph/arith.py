"""Integer arithmetic shared by the converter and the engine (no floating point).

`rounding_shift` is requantization: a rounding arithmetic right shift `(v + 2^(k-1)) >> k`
(round half up, as the fake-quant forward's `floor(x + 0.5)`); a negative amount is an exact
left shift. `conv_int` is an integer 2-D convolution with explicit padding, as im2col
(shifted slices + one int32 `dot_general`; feature order (i, j, cin) matches an HWIO kernel
reshaped to a matrix) or as `lax.conv_general_dilated` on int32 ('conv', XLA:CPU only: XLA:GPU
answers UNIMPLEMENTED for integer convolutions, seen with jax 0.11.2 on an H200).
`Checker` bounds every accumulator the converter emits to a signed width.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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


def crossbar_rows(x, kernel_hw, strides, padding):
    """(n, ho, wo, cin*kh*kw): the inputs a convolution drives on the rows of its layer matrix,
    in the crossbar view's row order cin*kh*kw + i*kw + j (`crimp_jax.xbar.view`). Exact for
    any dtype (slices and zero padding only)."""
    kh, kw = (int(k) for k in kernel_hw)
    strides = tuple(int(s) for s in strides)
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    p = _patches(x, kh, kw, strides, padding)
    cin = x.shape[-1]
    p = p.reshape(p.shape[:3] + (kh * kw, cin))
    return jnp.swapaxes(p, -1, -2).reshape(p.shape[:3] + (cin * kh * kw,))


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
                             "lower the bit widths or the thresholds of this layer")
        return width


def integral(x, what: str) -> np.ndarray:
    """int64 copy of `x`, refusing non-integral values (non-power-of-two scales)."""
    x = np.asarray(jax.device_get(x), np.float64)
    r = np.round(x)
    if not np.all(r == x):
        raise ValueError(f"{what}: non-integral values; the integer engine needs power-of-two "
                         "scales (quant.scale_mode='po2')")
    return r.astype(np.int64)
