"""Per-layer bit widths (regex rules, first/last layer policy) and the layer graph."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from crimp_jax.models import Tap, build_model
from crimp_jax.quant import (
    default_quant_config,
    input_taps,
    make_plan,
    model_graph,
    quant_spec,
    tap_paths,
)


def _plan(name="tiny_cnn", **cfg):
    return make_plan(build_model(name, folded=True), cfg)


def test_default_config_is_w8a8_po2():
    spec = quant_spec(default_quant_config())
    assert (spec.scale_mode, spec.weight_bits, spec.act_bits) == ("po2", 8, 8)


def test_first_last_policy_and_defaults():
    plan = _plan(weight_bits=4, act_bits=4)
    assert plan.wbits == {"conv0/conv/kernel": 8, "conv1/conv/kernel": 4,
                          "conv2/conv/kernel": 4, "fc/kernel": 8}
    assert plan.abits == {"act0": 4, "act1": 4, "act2": 4, "act_gap": 8}
    plan = _plan(weight_bits=4, act_bits=3, first_layer_bits=None, last_layer_bits=None)
    assert set(plan.wbits.values()) == {4} and set(plan.abits.values()) == {3}


def test_rules_override_in_order():
    plan = _plan(weight_bits=4, weight_rules=(("conv[12]", 6), ("conv2", 5), ("fc", 2)),
                 act_rules=(("act_gap", 3),))
    assert plan.wbits == {"conv0/conv/kernel": 8, "conv1/conv/kernel": 6,
                          "conv2/conv/kernel": 5, "fc/kernel": 2}
    assert plan.abits["act_gap"] == 3


def test_unmatched_rule_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'conv9'"):
        _plan(weight_rules=(("conv9", 4),))
    with pytest.raises(ValueError, match="'act_nope'"):
        _plan(act_rules=(("act_nope", 4),))


@pytest.mark.parametrize("cfg,match", [
    (dict(weight_bits=1), r"quant.weight_bits=1: signed .* 2..16"),
    (dict(weight_bits=9), r"quant.weight_bits=9: expected an integer in 2..8"),
    (dict(act_bits=0), r"quant.act_bits=0: unsigned .* 1..16"),
    (dict(act_bits=33), r"quant.act_bits=33"),
    (dict(first_layer_bits=1), r"quant.first_layer_bits=1"),
    (dict(weight_rules=(("conv1", 33),)), r"quant.weight_rules 'conv1'=33"),
    (dict(scale_mode="log"), r"scale_mode='log'"),
])
def test_bad_config_rejected(cfg, match):
    with pytest.raises(ValueError, match=match):
        quant_spec(cfg)


def test_unknown_key_and_unfolded_model_rejected():
    with pytest.raises(ValueError, match="unknown quant key\\(s\\)"):
        quant_spec({"wbits": 4})
    with pytest.raises(ValueError, match="folded"):
        make_plan(build_model("tiny_cnn"), {})


def test_input_taps_golden():
    r = input_taps(model_graph(build_model("resnet20", folded=True)))
    assert r["stem/conv/kernel"] is None
    assert r["s0b0/conv1/conv/kernel"] == "act_stem"
    assert r["s0b0/conv2/conv/kernel"] == "s0b0/act1"
    assert r["s1b0/conv1/conv/kernel"] == "s0b2/act_out"
    assert r["fc/kernel"] == "act_gap"
    v = input_taps(model_graph(build_model("vgg16", folded=True)))
    assert v["conv2/conv/kernel"] == "act1" and v["fc/kernel"] == "act12"
    t = input_taps(model_graph(build_model("tiny_cnn", folded=True)))
    assert t["conv1/conv/kernel"] == "act0"  # through the max pool


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet20", "vgg16"])
def test_graph_taps_match_the_model_call_order(name):
    model = build_model(name, folded=True)
    called = []

    def recorder(next_fun, args, kwargs, context):
        if isinstance(context.module, Tap):
            called.append("/".join(context.module.path))
        return next_fun(*args, **kwargs)

    x = jnp.zeros((1, 32, 32, 3), jnp.uint8)
    with nn.intercept_methods(recorder):
        jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    assert tap_paths(model_graph(model)) == called
