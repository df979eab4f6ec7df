"""The dataflow graph of a model as a JSON-able list of ops (one source of truth).

The quantizer uses it to know each layer's input activation (its exponent sets the bias scale
`s_w * s_x`) and which layers are first/last; the integer converter turns it into the engine's
program. It is built from the module's own attributes (widths, plan, depth), never by tracing.

Values are named by strings; each op reads `in` (and `shortcut`) and writes `out`:

  input     out='pixels'           uint8 image minus the integer channel mean (exponent 0)
  conv      kernel, bias, stride   SAME padding, HWIO kernel (accumulator: no activation)
  dense     kernel, bias
  requant   tap                    ReLU + unsigned requantization at the Tap named `tap`
                                   (ReLU is implied: clip to [0, 2^b-1] of the rounded value)
  maxpool   window                 window x window max, stride window, VALID
  add       shortcut, stride, pad  conv output + option-A shortcut (subsample, zero channel pad)
  gap_sum   hw                     sum over H, W (the mean is a sum at exponent - log2(hw))
  flatten

Axis glossary: activations are NHWC (batch, height, width, channel).
"""

from __future__ import annotations

from crimp_jax.models.resnet import CifarResNet
from crimp_jax.models.tiny import TinyCNN
from crimp_jax.models.vgg import VGG


def _conv(name, src, stride=1):
    return {"op": "conv", "name": name, "in": src, "out": name,
            "kernel": f"{name}/conv/kernel", "bias": f"{name}/conv/bias", "stride": stride}


def _requant(tap, src):
    return {"op": "requant", "tap": tap, "in": src, "out": tap}


def model_graph(model, image_hw=(32, 32)) -> list:
    """Ops of `model` (TinyCNN, VGG or CifarResNet) for inputs of spatial size `image_hw`."""
    h, w = image_hw
    ops = [{"op": "input", "out": "pixels"}]
    if isinstance(model, TinyCNN):
        x = "pixels"
        for i, _ in enumerate(model.widths):
            ops += [_conv(f"conv{i}", x), _requant(f"act{i}", f"conv{i}")]
            x = f"act{i}"
            if i < len(model.widths) - 1:
                ops.append({"op": "maxpool", "window": 2, "in": x, "out": f"pool{i}"})
                x, h, w = f"pool{i}", h // 2, w // 2
        ops += [{"op": "gap_sum", "hw": h * w, "in": x, "out": "gap"}, _requant("act_gap", "gap")]
        x = "act_gap"
    elif isinstance(model, VGG):
        x, i, p = "pixels", 0, 0
        for entry in model.plan:
            if entry == "M":
                ops.append({"op": "maxpool", "window": 2, "in": x, "out": f"pool{p}"})
                x, h, w, p = f"pool{p}", h // 2, w // 2, p + 1
                continue
            ops += [_conv(f"conv{i}", x), _requant(f"act{i}", f"conv{i}")]
            x, i = f"act{i}", i + 1
        ops.append({"op": "flatten", "in": x, "out": "flat"})
        x = "flat"
    elif isinstance(model, CifarResNet):
        if (model.depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth {model.depth}: expected 6n+2")
        n = (model.depth - 2) // 6
        ops += [_conv("stem", "pixels"), _requant("act_stem", "stem")]
        x, cin = "act_stem", model.widths[0]
        for stage, width in enumerate(model.widths):
            for block in range(n):
                b = f"s{stage}b{block}"
                stride = 2 if stage > 0 and block == 0 else 1
                extra = width - cin
                ops += [_conv(f"{b}/conv1", x, stride), _requant(f"{b}/act1", f"{b}/conv1"),
                        _conv(f"{b}/conv2", f"{b}/act1"),
                        {"op": "add", "in": f"{b}/conv2", "shortcut": x, "stride": stride,
                         "pad": [extra // 2, extra - extra // 2], "out": f"{b}/sum"},
                        _requant(f"{b}/act_out", f"{b}/sum")]
                x, cin = f"{b}/act_out", width
                h, w = -(-h // stride), -(-w // stride)
        ops += [{"op": "gap_sum", "hw": h * w, "in": x, "out": "gap"}, _requant("act_gap", "gap")]
        x = "act_gap"
    else:
        raise ValueError(f"no layer graph for model type {type(model).__name__}; "
                         "expected TinyCNN, VGG or CifarResNet")
    ops.append({"op": "dense", "name": "fc", "in": x, "out": "fc", "kernel": "fc/kernel",
                "bias": "fc/bias"})
    return ops


def tap_paths(ops) -> list:
    """Tap paths in call order, e.g. ['act_stem', 's0b0/act1', ...]."""
    return [op["tap"] for op in ops if op["op"] == "requant"]


def layer_ops(ops) -> list:
    """The conv and dense ops in call order."""
    return [op for op in ops if op["op"] in ("conv", "dense")]


def input_taps(ops) -> dict:
    """{kernel path: tap path feeding it, or None for the pixels}, through pools/flatten."""
    source = {}
    for op in ops:
        if op["op"] == "input":
            source[op["out"]] = None
        elif op["op"] == "requant":
            source[op["out"]] = op["tap"]
        elif op["op"] in ("maxpool", "flatten"):
            source[op["out"]] = source[op["in"]]
    out = {}
    for op in layer_ops(ops):
        if op["in"] not in source:
            raise ValueError(f"layer {op['name']} reads {op['in']!r}, which is not a quantized "
                             "activation or the pixels")
        out[op["kernel"]] = source[op["in"]]
    return out
