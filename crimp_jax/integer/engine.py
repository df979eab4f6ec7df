"""Integer-only inference engine: runs an artifact's program on uint8 images.

Every array is an integer (uint8 input, int8 weights, int32 everything else); the tests walk
the jaxpr of `engine_apply` and fail on any floating-point dtype. Requantization is a rounding
arithmetic right shift `(v + 2^(k-1)) >> k` (round half up, as the fake-quant forward's
`floor(x + 0.5)`); a negative shift amount is an exact left shift.

Two convolution implementations compute the same integers:
  'im2col'  (default) shifted slices + an int32 lax.dot_general. Feature order (i, j, cin)
            matches an HWIO kernel reshaped to a matrix. Runs on CPU and GPU (on CPU about 4x
            faster than 'conv' for tiny_cnn).
  'conv'    lax.conv_general_dilated on int32 with int32 accumulation. XLA:CPU only: XLA:GPU
            answers UNIMPLEMENTED for integer convolutions (seen with jax 0.11.2 on an H200).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from crimp_jax.integer.artifact import Artifact

CONV_IMPLS = ("conv", "im2col")
_DN = ("NHWC", "HWIO", "NHWC")


def rounding_shift(v, k):
    """floor(v / 2^k + 1/2) for int32 v and int32 shift amounts k (k <= 0: v * 2^-k, exact)."""
    k = jnp.asarray(k, jnp.int32)
    kp = jnp.maximum(k, 0)
    kn = jnp.maximum(-k, 0)
    half = jnp.right_shift(jnp.left_shift(jnp.int32(1), kp), 1)
    return jnp.left_shift(jnp.right_shift(v + half, kp), kn)


def _conv(x, w, stride: int, impl: str):
    if impl == "conv":
        return lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=_DN,
                                        preferred_element_type=jnp.int32)
    kh, kw, cin, cout = w.shape
    n, h, wd, _ = x.shape
    ho, wo = -(-h // stride), -(-wd // stride)
    # SAME padding as lax: total = max((out-1)*stride + k - in, 0), the extra pixel at the end.
    ph = max((ho - 1) * stride + kh - h, 0)
    pw = max((wo - 1) * stride + kw - wd, 0)
    xp = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    cols = [xp[:, i:i + (ho - 1) * stride + 1:stride, j:j + (wo - 1) * stride + 1:stride, :]
            for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate(cols, axis=-1)  # (n, ho, wo, kh*kw*cin), order (i, j, cin)
    return lax.dot_general(patches, w.reshape(kh * kw * cin, cout), (((3,), (0,)), ((), ())),
                           preferred_element_type=jnp.int32)


def engine_apply(ops, arrays, images, impl: str = "im2col"):
    """int32 logits (at the artifact's output exponent) of the program `ops` on uint8 images.

    `ops` is the artifact's (static) program, `arrays` its {name: integer array} dict.
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"impl={impl!r}: expected one of {CONV_IMPLS}")
    if images.dtype != jnp.uint8:
        raise ValueError(f"engine input dtype {images.dtype}: expected uint8 images")
    i32 = jnp.int32
    env = {}
    out = None
    for op in ops:
        kind = op["op"]
        if kind == "input":
            y = images.astype(i32) - arrays[op["mean"]].astype(i32)
        elif kind == "conv":
            y = _conv(env[op["in"]], arrays[op["w"]].astype(i32), op["stride"], impl)
            y = y + arrays[op["b"]].astype(i32)
        elif kind == "dense":
            y = lax.dot_general(env[op["in"]], arrays[op["w"]].astype(i32),
                                (((1,), (0,)), ((), ())), preferred_element_type=i32)
            y = y + arrays[op["b"]].astype(i32)
        elif kind == "requant":
            y = jnp.clip(rounding_shift(env[op["in"]], arrays[op["shift"]]), 0, op["qmax"])
        elif kind == "maxpool":
            k = op["window"]
            y = lax.reduce_window(env[op["in"]], jnp.iinfo(jnp.int32).min, lax.max,
                                  (1, k, k, 1), (1, k, k, 1), "VALID")
        elif kind == "add":
            sc, s = env[op["shortcut"]], op["stride"]
            if s > 1:
                sc = sc[:, ::s, ::s, :]
            lo, hi = op["pad"]
            if lo or hi:
                sc = jnp.pad(sc, ((0, 0), (0, 0), (0, 0), (lo, hi)))
            y = (jnp.left_shift(env[op["in"]], arrays[op["lshift_in"]].astype(i32))
                 + jnp.left_shift(sc, arrays[op["lshift_shortcut"]].astype(i32)))
        elif kind == "gap_sum":
            y = jnp.sum(env[op["in"]], axis=(1, 2), dtype=i32)
        elif kind == "flatten":
            x = env[op["in"]]
            y = x.reshape(x.shape[0], -1)
        elif kind == "lshift":
            y = jnp.left_shift(env[op["in"]], arrays[op["shift"]].astype(i32))
        else:
            raise ValueError(f"unknown engine op {kind!r}")
        env[op["out"]] = y
        out = y
    return out


def device_arrays(artifact: Artifact) -> dict:
    """The artifact's arrays as device arrays (integer dtypes kept)."""
    return {k: jnp.asarray(v) for k, v in artifact.arrays.items()}


def make_engine(artifact: Artifact, impl: str = "im2col"):
    """-> jitted fn(uint8 images (N, H, W, 3)) -> int32 logits at `artifact.output_exponent`."""
    if impl == "conv" and jax.default_backend() != "cpu":
        raise ValueError(f"impl='conv' needs XLA:CPU (integer convolutions are unimplemented on "
                         f"{jax.default_backend()}); use impl='im2col'")
    ops = artifact.ops
    arrays = device_arrays(artifact)
    expected = tuple(artifact.header["input_shape"])
    fn = jax.jit(functools.partial(engine_apply, ops, impl=impl))

    def run(images):
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"engine input shape {tuple(images.shape)}: expected (N, "
                             f"{', '.join(map(str, expected))})")
        return fn(arrays, images)

    return run


def run_engine(artifact: Artifact, images, impl: str = "im2col"):
    """(int32 logits, output exponent) of the artifact on uint8 images (compiles each call)."""
    return make_engine(artifact, impl)(jnp.asarray(images)), artifact.output_exponent
