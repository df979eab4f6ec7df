"""The integer engine: no floating point anywhere, bit-exact against the fake-quant forward,
accumulator-width refusal, rounding shifts."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.graph import fold_params
from crimp_jax.integer import (
    compare_engine,
    convert,
    engine_apply,
    engine_throughput,
    make_engine,
    rounding_shift,
)
from crimp_jax.integer.engine import device_arrays
from crimp_jax.models import build_network
from crimp_jax.quant import fake_quant_apply, init_quant_state
from crimp_jax.utils.paths import flatten, unflatten


def _images(n, seed=0):
    return jnp.asarray(np.random.RandomState(seed).randint(0, 256, (n, 32, 32, 3)), jnp.uint8)


# CIFAR-10's channel statistics (the golden accumulator widths below depend on the mean)
CIFAR10_MEAN_INT = (125, 123, 114)
CIFAR10_STD = (62.99, 62.09, 66.70)


def _random_folded(name, seed=0):
    """Random but realistic folded params, drawn with NumPy (no compile): He-normal kernels
    times a per-output-channel factor in [0.5, 1.5] (a folded BN's gamma / sigma), biases
    N(0, 0.1^2), and the layer reading the pixels divided by the pixel std as `fold_params`
    does. Returns (graph, params, images)."""
    x = _images(8, seed)
    net = build_network(name, mean_int=CIFAR10_MEAN_INT, std=CIFAR10_STD)
    graph = net.graph
    shapes = flatten(jax.eval_shape(lambda v: fold_params(graph, v["params"], v["batch_stats"]),
                                    net.abstract_variables()))
    pixel_kernels = {f"{name}/kernel" for name in graph.pixel_layers()}
    assert len(pixel_kernels) == 1
    rng = np.random.RandomState(seed)
    out = {}
    for path, a in shapes.items():
        if path.endswith("bias"):
            v = 0.1 * rng.randn(*a.shape)
        else:
            fan_in = int(np.prod(a.shape[:-1]))
            v = rng.randn(*a.shape) * np.sqrt(2.0 / fan_in) * rng.uniform(0.5, 1.5, a.shape[-1])
            if path in pixel_kernels:
                v = v / np.asarray(CIFAR10_STD)[None, None, :, None]
        out[path] = jnp.asarray(v, jnp.float32)
    return graph, unflatten(out), x


def float_dtypes_in_jaxpr(jaxpr) -> set:
    """Every floating dtype among the variables of a (closed) jaxpr and all its sub-jaxprs."""
    found = set()

    def visit(j):
        j = getattr(j, "jaxpr", j)
        for var in list(j.invars) + list(j.outvars) + list(j.constvars):
            aval = getattr(var, "aval", None)
            if aval is not None and jnp.issubdtype(aval.dtype, jnp.inexact):
                found.add(str(aval.dtype))
        for eqn in j.eqns:
            for var in list(eqn.invars) + list(eqn.outvars):
                aval = getattr(var, "aval", None)
                if aval is not None and jnp.issubdtype(aval.dtype, jnp.inexact):
                    found.add(f"{eqn.primitive.name}:{aval.dtype}")
            for param in eqn.params.values():
                for sub in (param if isinstance(param, (list, tuple)) else [param]):
                    if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                        visit(sub)

    visit(jaxpr)
    return found


def test_float_checker_can_fail():
    def f(x):
        return jax.jit(lambda y: (y.astype(jnp.float32) * 0.5).astype(jnp.int32))(x)

    assert float_dtypes_in_jaxpr(jax.make_jaxpr(f)(jnp.ones(3, jnp.int32)))


def test_rounding_shift_golden():
    v = jnp.array([5, -5, 6, -6, 7, -7, 1, -1], jnp.int32)
    # floor(v / 2 + 1/2)
    np.testing.assert_array_equal(rounding_shift(v, 1), [3, -2, 3, -3, 4, -3, 1, 0])
    np.testing.assert_array_equal(rounding_shift(v, 0), v)
    np.testing.assert_array_equal(rounding_shift(v, -2), 4 * v)
    np.testing.assert_array_equal(rounding_shift(jnp.array([12, 12]), jnp.array([2, 3])), [3, 2])


CASES = {
    "tiny_w8a8": ("tiny_cnn", dict(weight_bits=8, act_bits=8)),
    "tiny_w4a4_per_channel": ("tiny_cnn", dict(weight_bits=4, act_bits=4, per_channel=True)),
    "resnet20_w8a8": ("resnet20", dict(weight_bits=8, act_bits=8)),
    "resnet20_w4a4": ("resnet20", dict(weight_bits=4, act_bits=4, first_layer_bits=None,
                                       last_layer_bits=None, per_channel=True)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def converted(request):
    name, cfg = CASES[request.param]
    model, params, x = _random_folded(name)
    q = init_quant_state(model, params, x, cfg)
    return model, params, q, cfg, x, convert(model, params, q, cfg, model_name=name)


def test_engine_equals_fake_quant_exactly(converted):
    model, params, q, cfg, x, art = converted
    li = np.asarray(make_engine(art)(x))
    assert li.dtype == np.int32
    lf = np.asarray(jax.jit(functools.partial(fake_quant_apply, model, qcfg=cfg))(params, q, x))
    np.testing.assert_array_equal(li.astype(np.float64) * 2.0 ** art.output_exponent, lf)
    # not a degenerate model: logits differ between images and classes
    assert len(np.unique(li)) > li.size // 2


def test_engine_jaxpr_has_no_floating_point(converted):
    *_, x, art = converted
    jaxpr = jax.make_jaxpr(functools.partial(engine_apply, art.ops))(device_arrays(art), x)
    assert float_dtypes_in_jaxpr(jaxpr) == set()
    assert any(e.primitive.name == "dot_general" for e in jaxpr.jaxpr.eqns)


def test_conv_engine_matches_im2col_engine():
    model, params, x = _random_folded("tiny_cnn", seed=3)
    q = init_quant_state(model, params, x, {})
    art = convert(model, params, q, {})
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(make_engine(art, "conv")(x), make_engine(art, "im2col")(x))
    else:
        with pytest.raises(ValueError, match="use impl='im2col'"):
            make_engine(art, "conv")
    jaxpr = jax.make_jaxpr(functools.partial(engine_apply, art.ops, impl="conv"))(
        device_arrays(art), x)
    assert float_dtypes_in_jaxpr(jaxpr) == set()
    assert any(e.primitive.name == "conv_general_dilated" for e in jaxpr.jaxpr.eqns)


def _constant_tiny():
    """tiny_cnn with every kernel weight 1.0 and zero biases: every level is qmax = 127."""
    model, params, x = _random_folded("tiny_cnn")
    params = jax.tree.map(lambda a: jnp.ones_like(a) if a.ndim > 1 else jnp.zeros_like(a), params)
    return model, params, x


def test_accumulator_width_golden():
    model, params, x = _constant_tiny()
    q = init_quant_state(model, params, x, {})
    art = convert(model, params, q, {})
    # conv0: 3x3 kernel, levels 127, |centred pixel| <= (130, 132, 141) -> 9*127*403 = 460629,
    # 19 bits of magnitude + sign = 20.
    assert art.header["acc_widths"]["layer conv0/conv accumulator"] == 20
    assert art.header["layers"][0]["acc_bits"] == 20


def test_accumulator_width_refusal():
    model, params, x = _constant_tiny()
    q = init_quant_state(model, params, x, {})
    with pytest.raises(ValueError,
                       match=r"layer conv0/conv accumulator: .* 20 bits .* 16-bit limit"):
        convert(model, params, q, {}, max_acc_bits=16)
    # a huge bias at a tiny scale needs more than 31 bits
    params["conv1"]["conv"]["bias"] = jnp.full_like(params["conv1"]["conv"]["bias"], 1e15)
    with pytest.raises(ValueError,
                       match=r"layer conv1/conv accumulator: .* 32 bits .* 31-bit limit"):
        convert(model, params, q, {})


def test_float_scales_not_deployable():
    model, params, x = _constant_tiny()
    cfg = dict(scale_mode="float")
    q = init_quant_state(model, params, x, cfg)
    with pytest.raises(ValueError, match="scale_mode='float' cannot be deployed"):
        convert(model, params, q, cfg)


def test_engine_rejects_bad_input():
    model, params, x = _constant_tiny()
    q = init_quant_state(model, params, x, {})
    engine = make_engine(convert(model, params, q, {}))
    with pytest.raises(ValueError, match="expected uint8"):
        engine(x.astype(jnp.int32))
    with pytest.raises(ValueError, match=r"expected \(N, 32, 32, 3\)"):
        engine(x[:, :16])


def test_compare_and_throughput_smoke():
    model, params, x = _random_folded("tiny_cnn", seed=5)
    q = init_quant_state(model, params, x, {})
    art = convert(model, params, q, {})
    labels = np.arange(8) % 10
    res = compare_engine(art, model, params, q, {}, x, labels, batch_size=4)
    assert res["n"] == 8 and res["agreement"] == 1.0 and res["exact_logits"] == 1.0
    assert res["max_abs_logit_diff"] == 0.0
    assert res["engine_accuracy"] == res["fake_quant_accuracy"]
    tp = engine_throughput(art, model, params, q, {}, x, repeats=1)
    assert tp["engine_images_per_s"] > 0 and tp["fake_quant_images_per_s"] > 0


def test_a_branch_of_tiny_weights_keeps_every_accumulator_within_31_bits():
    """A residual branch whose folded weights are ~1e-9 of the others (a zero-initialised
    last BatchNorm scale after a little training): without `quant.max_residual_shift` the
    shortcut would be shifted ~30 bits to the branch's exponent and the converter would refuse
    a 32-bit accumulator; with it, the branch's exponent is floored, the conversion succeeds
    and the engine still equals the fake-quantized model bit for bit."""
    from crimp_jax.quant.fake import make_plan, weight_exponents
    model, params, x = _random_folded("resnet20")
    flat = dict(flatten(params))
    tiny = [p for p in flat if p.endswith("conv2/conv/kernel")]
    assert len(tiny) == 9  # every block's last conv: identity and option-A shortcuts
    for p in tiny:
        flat[p] = flat[p] * 1e-9
        flat[p.replace("kernel", "bias")] = flat[p.replace("kernel", "bias")] * 1e-9
    params = unflatten(flat)
    cfg = dict(weight_bits=8, act_bits=8)
    q = init_quant_state(model, params, x, cfg)
    plan = make_plan(model, cfg)
    e_raw = weight_exponents(dataclasses.replace(plan, partners={}), params, q)
    e = weight_exponents(plan, params, q)
    for p in tiny:  # floored: no more than max_residual_shift (16) finer than the shortcut
        assert float(np.max(e[p])) > float(np.max(e_raw[p])) + 10, (p, e[p], e_raw[p])
    art = convert(model, params, q, cfg, model_name="resnet20")
    li = np.asarray(make_engine(art)(x))
    lf = np.asarray(jax.jit(functools.partial(fake_quant_apply, model, qcfg=cfg))(params, q, x))
    np.testing.assert_array_equal(li.astype(np.float64) * 2.0 ** art.output_exponent, lf)
    cfg_off = dict(cfg, max_residual_shift=20)  # the widest allowed shift still converts
    convert(model, params, init_quant_state(model, params, x, cfg_off), cfg_off,
            model_name="resnet20")
