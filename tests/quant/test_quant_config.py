"""Per-layer bit widths (regex rules, first/last layer policy) and the layer graph."""

import pytest

from crimp_jax.models import build_model, build_network
from crimp_jax.quant import default_quant_config, make_plan, quant_spec


def _graph(name):
    return build_network(name).graph


def _plan(name="tiny_cnn", **cfg):
    return make_plan(_graph(name), cfg)


def test_default_config_is_w8a8_po2():
    spec = quant_spec(default_quant_config())
    assert (spec.scale_mode, spec.weight_bits, spec.act_bits) == ("po2", 8, 8)


def test_first_last_policy_and_defaults():
    plan = _plan(weight_bits=4, act_bits=4)
    assert plan.wbits == {"conv0/conv/kernel": 8, "conv1/conv/kernel": 4,
                          "conv2/conv/kernel": 4, "fc/kernel": 8}
    assert plan.abits == {"relu0": 4, "relu1": 4, "relu2": 4, "mean0": 8}
    plan = _plan(weight_bits=4, act_bits=3, first_layer_bits=None, last_layer_bits=None)
    assert set(plan.wbits.values()) == {4} and set(plan.abits.values()) == {3}


def test_rules_override_in_order():
    plan = _plan(weight_bits=4, weight_rules=(("conv[12]", 6), ("conv2", 5), ("fc", 2)),
                 act_rules=(("mean0", 3),))
    assert plan.wbits == {"conv0/conv/kernel": 8, "conv1/conv/kernel": 6,
                          "conv2/conv/kernel": 5, "fc/kernel": 2}
    assert plan.abits["mean0"] == 3


def test_unmatched_rule_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'conv9'"):
        _plan(weight_rules=(("conv9", 4),))
    with pytest.raises(ValueError, match="'relu_nope'"):
        _plan(act_rules=(("relu_nope", 4),))


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


def test_unknown_key_and_non_graph_rejected():
    with pytest.raises(ValueError, match="unknown quant key\\(s\\)"):
        quant_spec({"wbits": 4})
    with pytest.raises(ValueError, match="network.graph"):
        make_plan(build_model("tiny_cnn"), {})


def test_input_taps_golden():
    r = _graph("resnet20").input_taps()
    assert r["stem/conv/kernel"] is None
    assert r["s0b0/conv1/conv/kernel"] == "relu0"
    assert r["s0b0/conv2/conv/kernel"] == "s0b0/relu0"
    assert r["s1b0/conv1/conv/kernel"] == "s0b2/relu1"
    assert r["fc/kernel"] == "mean0"
    v = _graph("vgg16").input_taps()
    assert v["conv2/conv/kernel"] == "relu1" and v["fc/kernel"] == "relu12"
    t = _graph("tiny_cnn").input_taps()
    assert t["conv1/conv/kernel"] == "relu0"  # through the max pool


_RESNET20_TAPS = ["relu0"] + [f"s{s}b{b}/relu{k}" for s in range(3) for b in range(3)
                              for k in range(2)] + ["mean0"]


@pytest.mark.parametrize("name,taps", [
    ("tiny_cnn", ["relu0", "relu1", "relu2", "mean0"]),
    ("resnet20", _RESNET20_TAPS),
    ("vgg16", [f"relu{i}" for i in range(13)]),
])
def test_graph_taps_follow_the_relus_in_call_order(name, taps):
    """One tap right after every ReLU (named after it, in execution order) and one before a
    layer whose input is off the quantization grid (the global average pool's mean)."""
    graph = _graph(name)
    assert graph.taps == taps
    relus = [op["name"] for op in graph.ops if op["op"] == "relu"]
    assert [t for t in graph.taps if "relu" in t] == relus
    for op in graph.ops:
        if op["op"] == "requant":
            src = graph.producer(op["in"][0])
            assert src["name"] == op["tap"] and src["op"] in ("relu", "scale")
    pos = {op["out"]: i for i, op in enumerate(graph.ops)}
    for op in graph.ops:  # execution order: every op reads values computed before it
        assert all(pos[i] < pos[op["out"]] for i in op["in"])
