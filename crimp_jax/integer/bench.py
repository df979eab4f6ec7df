"""Engine vs fake-quant: throughput, prediction agreement, accuracy (for experiments.bench)."""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.integer.artifact import Artifact
from crimp_jax.integer.engine import make_engine
from crimp_jax.quant.fake import fake_quant_apply


def _batches(n: int, batch_size: int):
    for i in range(0, n, batch_size):
        yield slice(i, min(i + batch_size, n))


def _images_per_s(fn, images, repeats: int) -> float:
    jax.block_until_ready(fn(images))  # compile + warm up
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(images))
    return repeats * images.shape[0] / (time.perf_counter() - t0)


def engine_throughput(artifact: Artifact, graph, params, qstate, qcfg, images, *,
                      repeats: int = 5, impl: str = "im2col") -> dict:
    """Images/s of the integer engine and of the jitted fake-quant forward on one batch."""
    images = jnp.asarray(images)
    engine = make_engine(artifact, impl)
    fq = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=qcfg))
    return {"batch": int(images.shape[0]), "impl": impl, "device": jax.devices()[0].device_kind,
            "engine_images_per_s": _images_per_s(engine, images, repeats),
            "fake_quant_images_per_s": _images_per_s(lambda x: fq(params, qstate, x), images,
                                                     repeats)}


def compare_engine(artifact: Artifact, graph, params, qstate, qcfg, images, labels=None, *,
                   batch_size: int = 500, impl: str = "im2col", crossbar=None) -> dict:
    """Engine vs fake-quant on `images`: prediction agreement, exact-logit fraction, largest
    logit difference (in float units) and, with `labels`, both accuracies. `crossbar`: the
    fake-quant forward's crossbar hook (`fake_quant_apply`), for an artifact converted with a
    periphery (its ideal-cell ADC path)."""
    engine = make_engine(artifact, impl)
    fq = jax.jit(functools.partial(fake_quant_apply, graph, qcfg=qcfg, crossbar=crossbar))
    scale = 2.0 ** artifact.output_exponent
    agree = exact = correct_e = correct_f = 0
    max_diff = 0.0
    n = int(images.shape[0])
    for sl in _batches(n, batch_size):
        x = jnp.asarray(images[sl])
        li = np.asarray(engine(x)).astype(np.float64) * scale
        lf = np.asarray(fq(params, qstate, x)).astype(np.float64)
        pe, pf = li.argmax(-1), lf.argmax(-1)
        agree += int((pe == pf).sum())
        exact += int(np.all(li == lf, axis=-1).sum())
        max_diff = max(max_diff, float(np.max(np.abs(li - lf))))
        if labels is not None:
            y = np.asarray(labels[sl])
            correct_e += int((pe == y).sum())
            correct_f += int((pf == y).sum())
    out = {"n": n, "agreement": agree / n, "exact_logits": exact / n,
           "max_abs_logit_diff": max_diff}
    if labels is not None:
        out.update(engine_accuracy=correct_e / n, fake_quant_accuracy=correct_f / n)
    return out
