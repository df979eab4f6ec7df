"""The fake-quantized (QAT) forward: calibration, integer weights, gradients, weight transform."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.graph import fold_params
from crimp_jax.models import build_network
from crimp_jax.quant import (
    fake_quant_apply,
    init_quant_state,
    quantize_biases_int,
    quantize_weights_int,
)
from crimp_jax.utils.paths import flatten, unflatten

CFG = dict(weight_bits=4, act_bits=4)


@pytest.fixture(scope="module")
def tiny():
    x = jnp.asarray(np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3)), jnp.uint8)
    net = build_network("tiny_cnn")
    model = net.graph
    # folded params drawn with NumPy (no compile): He-normal kernels, small biases
    shapes = flatten(jax.eval_shape(lambda v: fold_params(model, v["params"], v["batch_stats"]),
                                    net.abstract_variables()))
    rng = np.random.RandomState(0)
    params = unflatten({
        p: jnp.asarray(0.1 * rng.randn(*a.shape) if p.endswith("bias") else
                       rng.randn(*a.shape) * np.sqrt(2.0 / np.prod(a.shape[:-1])), jnp.float32)
        for p, a in shapes.items()})
    return model, params, x, init_quant_state(model, params, x, CFG)


def _fq(model, cfg=CFG, **kw):
    return jax.jit(functools.partial(fake_quant_apply, model, qcfg=cfg, **kw))


def test_calibration_golden(tiny):
    model, params, x, q = tiny
    w = params["conv1"]["conv"]["kernel"]
    assert float(q["weight"]["conv1"]["conv"]["kernel"]) == pytest.approx(
        float(np.log2(np.abs(w).max())), abs=1e-5)
    assert set(q["act"]) == {"relu0", "relu1", "relu2", "mean0"}
    assert q["act"]["relu0"]["log2_t"].shape == ()
    pc = init_quant_state(model, params, x, dict(CFG, per_channel=True))
    np.testing.assert_allclose(pc["weight"]["conv1"]["conv"]["kernel"],
                               np.log2(np.abs(w).reshape(-1, 32).max(0)), rtol=1e-5)


@pytest.mark.parametrize("per_channel", [False, True])
def test_integer_weights_and_biases(tiny, per_channel):
    model, params, x, _ = tiny
    cfg = dict(CFG, per_channel=per_channel)
    q = init_quant_state(model, params, x, cfg)
    wq = quantize_weights_int(model, params, q, cfg)
    flat = flatten(params)
    for path, (lv, e) in wq.items():
        bits = 8 if path in ("conv0/conv/kernel", "fc/kernel") else 4
        assert float(jnp.abs(lv).max()) <= 2 ** (bits - 1) - 1, path
        np.testing.assert_array_equal(lv, jnp.round(lv))
        np.testing.assert_array_equal(e, jnp.round(e))
        assert e.shape == ((flat[path].shape[-1],) if per_channel else ())
        # calibrated from max|w|: the largest weight (per scale) is not clipped
        assert float(jnp.abs(lv * 2.0 ** e - flat[path]).max()) <= float(2.0 ** jnp.max(e)) / 2
    bq = quantize_biases_int(model, params, q, cfg)
    qb, eb = bq["conv1/conv/bias"]
    e_relu0 = np.ceil(q["act"]["relu0"]["log2_t"]) - 4
    np.testing.assert_array_equal(eb, wq["conv1/conv/kernel"][1] + e_relu0)
    np.testing.assert_array_equal(qb, jnp.floor(flat["conv1/conv/bias"] * 2.0 ** -eb + 0.5))


def test_jit_grad_and_traces_once(tiny):
    model, params, x, q = tiny

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(p, qs, images):
        return jnp.mean(fake_quant_apply(model, p, qs, images, CFG) ** 2)

    gp, gq = jax.grad(loss, argnums=(0, 1))(params, q, x)
    jax.grad(loss, argnums=(0, 1))(params, q, x)
    for g in (gp, gq):
        leaves = jax.tree.leaves(g)
        assert all(bool(jnp.all(jnp.isfinite(l))) for l in leaves)
    assert float(jnp.abs(gp["conv1"]["conv"]["kernel"]).sum()) > 0
    assert float(jnp.abs(gq["act"]["relu1"]["log2_t"])) > 0
    assert float(jnp.abs(gq["weight"]["conv1"]["conv"]["kernel"])) > 0


def test_weight_transform_hook(tiny):
    model, params, x, q = tiny
    base = _fq(model)(params, q, x)
    same = _fq(model, weight_transform=lambda wq: {p: a * 2.0 ** e for p, (a, e) in wq.items()})(
        params, q, x)
    np.testing.assert_array_equal(base, same)

    def zero_fc(wq):
        out = {p: a * 2.0 ** e for p, (a, e) in wq.items()}
        out["fc/kernel"] = jnp.zeros_like(out["fc/kernel"])
        return out

    zeroed = _fq(model, weight_transform=zero_fc)(params, q, x)
    # zero fc kernel: logits are the (quantized) fc bias, the same for every image
    np.testing.assert_array_equal(zeroed[0], zeroed[1])
    assert not np.array_equal(zeroed, base)
    with pytest.raises(ValueError, match="dropped kernels"):
        fake_quant_apply(model, params, q, x, CFG, weight_transform=lambda wq: {})


def test_quantization_changes_logits_but_stays_close_at_8_bits(tiny):
    model, params, x, _ = tiny
    q = init_quant_state(model, params, x, {})
    fq = _fq(model, {})(params, q, x)
    fp = jax.jit(model.apply)(params, x)
    assert not np.array_equal(fq, fp)
    assert float(jnp.abs(fq - fp).max()) < 0.1 * float(jnp.abs(fp).max())


def test_float_scale_mode_has_real_exponents(tiny):
    model, params, x, _ = tiny
    cfg = dict(CFG, scale_mode="float")
    q = init_quant_state(model, params, x, cfg)
    wq = quantize_weights_int(model, params, q, cfg)
    exps = np.array([float(e) for _, e in wq.values()])
    assert not np.all(exps == np.round(exps))
    out = _fq(model, cfg)(params, q, x)
    assert out.shape == (4, 10) and bool(jnp.all(jnp.isfinite(out)))
