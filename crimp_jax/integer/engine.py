"""Integer-only inference engine: runs an artifact's program on uint8 images.

Every array is an integer (uint8 input, int8 weights, int32 everything else); the tests walk
the jaxpr of `engine_apply` and fail on any floating-point dtype. Each step runs its op's
registry entry (`crimp_jax.graph.ops`, `OpDef.engine`); requantization is a rounding arithmetic
right shift (`crimp_jax.graph.arith.rounding_shift`).

Two convolution implementations compute the same integers (`crimp_jax.graph.arith.conv_int`):
  'im2col'  (default) shifted slices + an int32 lax.dot_general. Runs on CPU and GPU (on CPU
            about 4x faster than 'conv' for tiny_cnn).
  'conv'    lax.conv_general_dilated on int32 with int32 accumulation. XLA:CPU only: XLA:GPU
            answers UNIMPLEMENTED for integer convolutions (seen with jax 0.11.2 on an H200).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from crimp_jax.graph import ops as gops
from crimp_jax.graph.arith import CONV_IMPLS, rounding_shift  # noqa: F401 (re-exported)
from crimp_jax.integer.artifact import Artifact


@dataclasses.dataclass(frozen=True)
class EngineContext:
    images: object
    arrays: dict
    impl: str


def _lshift_engine(step, xs, ex):
    return jnp.left_shift(xs[0], ex.arrays[step["shift"]].astype(jnp.int32))


def engine_apply(ops, arrays, images, impl: str = "im2col"):
    """int32 logits (at the artifact's output exponent) of the program `ops` on uint8 images.

    `ops` is the artifact's (static) program, `arrays` its {name: integer array} dict.
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"impl={impl!r}: expected one of {CONV_IMPLS}")
    if images.dtype != jnp.uint8:
        raise ValueError(f"engine input dtype {images.dtype}: expected uint8 images")
    ex = EngineContext(images, arrays, impl)
    env, out = {}, None
    for step in ops:
        fn = _lshift_engine if step["op"] == "lshift" else gops.opdef(step["op"]).engine
        out = env[step["out"]] = fn(step, [env[i] for i in step["in"]], ex)
    return out


def device_arrays(artifact: Artifact) -> dict:
    """The artifact's arrays as device arrays (integer dtypes kept)."""
    return {k: jnp.asarray(v) for k, v in artifact.arrays.items()}


def make_engine(artifact: Artifact, impl: str = "im2col"):
    """-> jitted fn(uint8 images (N, H, W, C)) -> int32 logits at `artifact.output_exponent`."""
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
