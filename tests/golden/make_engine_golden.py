"""Writes tests/golden/engine_logits.npz: integer-engine logits of every registered model on a
fixed input, from BatchNorm params and statistics drawn by a path-seeded NumPy generator
(`golden_variables`), through fold -> calibrate -> convert -> engine.

The committed file was written at commit 8d56305, by the hand-written per-model graphs that
the graph reader (`crimp_jax.graph`) replaced; `tests/test_graph_regression.py` checks that the
graph read from each model reproduces these logits exactly. `chain` is the same chain in
today's API (rerunning this script rewrites the file from it):
    python -m tests.golden.make_engine_golden
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("engine_logits.npz")
MODELS = ("tiny_cnn", "resnet20", "resnet32", "resnet56", "vgg16")


def images(n: int, seed: int) -> np.ndarray:
    """Fixed uint8 images (n, 32, 32, 3)."""
    return np.random.RandomState(seed).randint(0, 256, (n, 32, 32, 3)).astype(np.uint8)


def golden_variables(shapes: dict) -> dict:
    """{slash path: array} for the BN model's params and batch_stats, each leaf drawn from a
    NumPy generator seeded by crc32 of its path (independent of how a model is initialised)."""
    out = {}
    for path, shape in shapes.items():
        rng = np.random.RandomState(zlib.crc32(path.encode()))
        leaf = path.rsplit("/", 1)[-1]
        if leaf == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            v = rng.randn(*shape) * np.sqrt(2.0 / fan_in)
        elif leaf == "scale":
            v = rng.uniform(0.5, 1.5, shape)
        elif leaf == "var":
            v = rng.uniform(0.5, 2.0, shape)
        else:  # bias, mean
            v = 0.1 * rng.randn(*shape)
        out[path] = v.astype(np.float32)
    return out


CIFAR10_MEAN_INT = (125, 123, 114)  # the channel statistics the golden run used
CIFAR10_STD = (62.99, 62.09, 66.70)
QCFG = {"weight_bits": 4, "act_bits": 4}


def chain(name: str):
    """(int32 logits, exponent, artifact) of registered model `name`: golden variables -> fold ->
    calibrate on images(16, 0) -> convert -> engine on images(4, 1)."""
    import jax
    import jax.numpy as jnp

    from crimp_jax.graph import fold_params
    from crimp_jax.integer import convert, run_engine
    from crimp_jax.models import build_network
    from crimp_jax.quant import init_quant_state
    from crimp_jax.utils.paths import flatten, unflatten

    calib, x = jnp.asarray(images(16, 0)), jnp.asarray(images(4, 1))
    net = build_network(name, (32, 32, 3), CIFAR10_MEAN_INT, CIFAR10_STD)
    flat = {p: a.shape for p, a in flatten(net.abstract_variables()).items()}
    v = unflatten({p: jnp.asarray(a) for p, a in golden_variables(flat).items()})
    graph = net.graph
    folded = fold_params(graph, v["params"], v["batch_stats"])
    qstate = init_quant_state(graph, folded, calib, QCFG)
    art = convert(graph, folded, qstate, QCFG, model_name=name)
    logits, e = run_engine(art, x)
    del jax
    return np.asarray(logits), e, art


def main():
    out = {}
    for name in MODELS:
        logits, e, _ = chain(name)
        out[f"{name}/logits"] = logits
        out[f"{name}/exponent"] = np.asarray(e)
        print(name, logits[0, :4].tolist(), e)
    np.savez(OUT, **out)


if __name__ == "__main__":
    main()
