"""Writes tests/golden/engine_logits.npz: integer-engine logits of every registered model on a
fixed input, from BatchNorm params and statistics drawn by a path-seeded NumPy generator
(`golden_variables`), through fold -> calibrate -> convert -> engine.

Run once at commit "golden engine logits before the graph reader" (the hand-written graphs);
`tests/test_graph_regression.py` checks that the graph read from the model reproduces them.
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


def main():
    import jax
    import jax.numpy as jnp

    from crimp_jax.integer import convert, run_engine
    from crimp_jax.models import build_model
    from crimp_jax.models.fold import fold_batchnorm
    from crimp_jax.quant import init_quant_state
    from crimp_jax.utils.paths import flatten, unflatten

    calib, x = jnp.asarray(images(16, 0)), jnp.asarray(images(4, 1))
    out = {}
    for name in MODELS:
        model = build_model(name)
        shapes = jax.eval_shape(model.init, jax.random.key(0), calib[:1])
        flat = {p: a.shape for p, a in flatten(shapes).items()}
        v = unflatten({p: jnp.asarray(a) for p, a in golden_variables(flat).items()})
        folded_model = build_model(name, folded=True)
        folded = fold_batchnorm(v["params"], v["batch_stats"], name)
        qcfg = {"weight_bits": 4, "act_bits": 4}
        qstate = init_quant_state(folded_model, folded, calib, qcfg)
        art = convert(folded_model, folded, qstate, qcfg, model_name=name)
        logits, e = run_engine(art, x)
        out[f"{name}/logits"] = np.asarray(logits)
        out[f"{name}/exponent"] = np.asarray(e)
        print(name, np.asarray(logits)[0, :4].tolist(), e)
    np.savez(OUT, **out)


if __name__ == "__main__":
    main()
