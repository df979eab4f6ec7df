"""Read noise is drawn per read: a Monte Carlo chip keeps its write draws and reads its arrays
again for every test batch (fresh read noise), identically under 'loop' and 'vmap'."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.config import base_config
from crimp_jax.evaluate import evaluate_chips
from crimp_jax.evaluate.chips import chip_and_apply, reads_per_batch
from crimp_jax.models import build_network, init_folded
from crimp_jax.quant import init_quant_state, quantize_weights_int
from crimp_jax.xbar import xbar_spec


@pytest.fixture(scope="module")
def setup():
    c = base_config()
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (40, 32, 32, 3)), jnp.uint8)
    model_f, folded = init_folded(build_network("tiny_cnn"), jax.random.key(0))
    qstate = init_quant_state(model_f, folded, images, c.quant)
    qe = quantize_weights_int(model_f, folded, qstate, c.quant)
    vcfg = c.variation.to_dict() | {"sigma": 0.0, "read_noise": 0.2}
    chip, apply = chip_and_apply(model_f, c.quant, vcfg, xbar_spec(c.xbar))
    labels = jnp.argmax(apply(chip(jax.random.key(9), folded, qstate, qe, None,
                                   jnp.float32(0.0)), images, 0), -1)  # a noisy read's labels
    return dict(c=c, images=images, labels=labels, folded=folded, qstate=qstate, qe=qe,
                chip=chip, apply=apply, model_f=model_f, vcfg=vcfg)


def test_each_batch_reads_with_its_own_noise(setup):
    s = setup
    assert reads_per_batch(s["vcfg"]) and not reads_per_batch(s["vcfg"] | {"read_noise": 0.0})
    c = s["chip"](jax.random.key(1), s["folded"], s["qstate"], s["qe"], None, jnp.float32(0.0))
    a0, a0_again, a1 = (s["apply"](c, s["images"], b) for b in (0, 0, 1))
    np.testing.assert_array_equal(a0, a0_again)  # a read is a pure function of (chip, batch)
    assert not np.allclose(a0, a1)  # another batch, another read
    with pytest.raises(ValueError, match="read_noise > 0 is drawn per read"):
        s["apply"](c, s["images"])
    # A plain model given with its kernels (the benchmark's baseline) needs no batch index.
    plain = {"p": s["folded"], "qs": s["qstate"],
             "k": {p: q * 2.0 ** e for p, (q, e) in s["qe"].items()}}
    assert s["apply"](plain, s["images"]).shape == (40, 10)


def test_loop_and_vmap_agree_with_per_batch_reads(setup):
    s = setup
    args = (s["folded"], s["qstate"], s["qe"], None, jnp.float32(0.0))
    kw = dict(chip_args=args, n_chips=4, batch_size=10, seed=5, per_batch=True)
    loop = evaluate_chips(s["apply"], s["chip"], s["images"], s["labels"], impl="loop", **kw)
    vmap = evaluate_chips(s["apply"], s["chip"], s["images"], s["labels"], impl="vmap",
                          chip_chunk=2, **kw)
    np.testing.assert_array_equal(loop, vmap)
    assert loop.std() > 0  # read noise alone makes chips differ at sigma 0
