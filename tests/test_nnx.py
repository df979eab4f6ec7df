"""Flax NNX models, written here the way the current Flax examples write them (none is a copy):
read through `crimp_jax.graph.from_nnx.FromNNX`, their layers seen by `crimp_jax.graph.calls`.

- `MnistStyleCNN` follows the Flax MNIST example's NNX CNN: Conv -> Dropout -> BatchNorm ->
  relu -> a `functools.partial(nnx.avg_pool, ...)` attribute, Linear -> Dropout -> Linear, no
  train flag (training mode by `model.train()` / `model.eval()`), `__call__(self, x, rngs)`.
- `NnxResNet` follows the NNX docs' style of composed modules: blocks in a list, an
  `nnx.Sequential` head, BatchNorm switched by a `train` argument (the stem's with
  `axis_name`, as the Flax ImageNet example writes it), a zero-initialised last
  BatchNorm scale per block and projection shortcuts, and a Dropout holding its own RNG stream.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from crimp_jax import api
from crimp_jax.graph import GraphError, Network
from crimp_jax.integer import load_artifact
from crimp_jax.train import pipeline
from experiments.configs.quickstart import get_config
from tests.test_real_models import _splits


class MnistStyleCNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, channels: int = 3, size: int = 32):
        self.conv1 = nnx.Conv(channels, 8, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(8, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=0.025)
        self.conv2 = nnx.Conv(8, 16, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(16, rngs=rngs)
        self.avg_pool = functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(16 * (size // 4) ** 2, 32, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=0.025)
        self.linear2 = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x, rngs: nnx.Rngs):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)
        x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
        return self.linear2(x)


class NnxBlock(nnx.Module):
    def __init__(self, cin, cout, stride, rngs):
        self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(cout, rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(cout, scale_init=nnx.initializers.zeros_init(), rngs=rngs)
        if stride != 1 or cin != cout:
            self.proj = nnx.Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs)
            self.proj_bn = nnx.BatchNorm(cout, rngs=rngs)
        else:
            self.proj = None

    def __call__(self, x, train):
        y = nnx.relu(self.bn1(self.conv1(x), use_running_average=not train))
        y = self.bn2(self.conv2(y), use_running_average=not train)
        if self.proj is not None:
            x = self.proj_bn(self.proj(x), use_running_average=not train)
        return nnx.relu(x + y)


class NnxResNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, width: int = 8):
        self.stem = nnx.Conv(3, width, (3, 3), use_bias=False, rngs=rngs)
        self.stem_bn = nnx.BatchNorm(width, axis_name="batch", rngs=rngs)  # data-parallel
        self.blocks = nnx.List([NnxBlock(width, width, 1, rngs),
                                NnxBlock(width, 2 * width, 2, rngs)])
        self.head = nnx.Sequential(nnx.Dropout(0.3, rngs=rngs), nnx.Linear(2 * width, 10,
                                                                            rngs=rngs))

    def __call__(self, x, train: bool = False):
        x = nnx.relu(self.stem_bn(self.stem(x), use_running_average=not train))
        for block in self.blocks:
            x = block(x, train)
        return self.head(jnp.mean(x, axis=(1, 2)))


def _net(module, splits, train_arg="auto"):
    i = splits.info
    return Network(module, i.image_shape, i.mean_int, i.std, "", train_arg)


def test_an_nnx_model_is_read_by_attribute_path_and_equals_its_module():
    s = _splits(1)
    model = MnistStyleCNN(nnx.Rngs(0))
    net = _net(model, s)
    assert net.module_name == "MnistStyleCNN"
    v = net.init(jax.random.key(0))
    assert set(v["params"]) == {"conv1", "batch_norm1", "conv2", "batch_norm2", "linear1",
                                "linear2"}
    assert set(v["batch_stats"]) == {"batch_norm1", "batch_norm2"}
    np.testing.assert_array_equal(v["params"]["conv1"]["kernel"], model.conv1.kernel[...])
    g = net.graph
    assert [(op["op"], op["name"], op.get("bn")) for op in g.layers] == [
        ("conv", "conv1", "batch_norm1"), ("conv", "conv2", "batch_norm2"),
        ("dense", "linear1", None), ("dense", "linear2", None)]
    net.check_graph()
    # evaluation mode equals the NNX model in its own evaluation mode
    model.eval()
    want = model(net.normalize(s.train.images), nnx.Rngs(0))
    np.testing.assert_allclose(net.apply(v, s.train.images), want, rtol=1e-6, atol=1e-6)

    # nested modules, an nnx.List, nnx.Sequential, a train argument
    res = _net(NnxResNet(nnx.Rngs(0)), s)
    assert res.train_arg == "train" and res.module.train_arg == "train"
    names = [op["name"] for op in res.graph.layers]
    assert names == ["stem", "blocks/0/conv1", "blocks/0/conv2", "blocks/1/conv1",
                     "blocks/1/conv2", "blocks/1/proj", "head/layers/1"]
    assert res.init(jax.random.key(0))["params"]["blocks"]["1"]["proj_bn"]["scale"].shape == (16,)
    res.check_graph()  # the zero-initialised scales made generic: every branch is seen


def test_nnx_training_mode_draws_dropout_per_step_and_updates_statistics_in_a_copy():
    s = _splits(1)
    model = NnxResNet(nnx.Rngs(0))
    before = nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))
    net = _net(model, s)
    assert net.axis_names == ("batch",)  # bound, of size one, around the training call
    v = net.init(jax.random.key(0))
    step = jax.jit(lambda v, key: net.apply(v, s.train.images, train=True,
                                            mutable=["batch_stats"], rng=key))
    a, upd = step(v, jax.random.key(1))
    b, _ = step(v, jax.random.key(2))
    a2, _ = step(v, jax.random.key(1))
    assert not np.allclose(a, b)  # another step, another dropout mask
    np.testing.assert_array_equal(a, a2)
    # the statistics are those of this batch, written back where linen keeps them
    x = net.normalize(s.train.images)
    stem = nnx.Conv(3, 8, (3, 3), use_bias=False, rngs=nnx.Rngs(0))
    stem.kernel[...] = v["params"]["stem"]["kernel"]
    y = stem(x)
    mom = model.stem_bn.momentum
    np.testing.assert_allclose(upd["batch_stats"]["stem_bn"]["mean"],
                               mom * v["batch_stats"]["stem_bn"]["mean"]
                               + (1 - mom) * y.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
    e1, e2 = (net.apply(v, s.train.images) for _ in range(2))
    np.testing.assert_array_equal(e1, e2)
    # the researcher's model is untouched: same state, still in its own mode
    jax.tree.map(np.testing.assert_array_equal,
                 nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))), before)
    assert model.blocks[0].bn1.use_running_average is False


def test_nnx_through_flax_bridge_inits_from_the_key():
    s = _splits(1)
    net = _net(nnx.bridge.ToLinen(MnistStyleCNN), s)
    a, b = (net.init(jax.random.key(k))["params"]["conv1"]["kernel"] for k in (0, 1))
    assert a.shape == (3, 3, 3, 8) and not np.allclose(a, b)
    assert net.module_name == "MnistStyleCNN" and net.graph.layers[0]["name"] == "conv1"


class StandardisedConv(nnx.Conv):
    """A weight-standardised conv (the pattern of several public ResNets)."""

    def __call__(self, x):
        k = self.kernel[...]
        self.kernel[...] = (k - k.mean(axis=(0, 1, 2))) / (k.std(axis=(0, 1, 2)) + 1e-5)
        return super().__call__(x)


class _Wrapped(nnx.Module):
    def __init__(self, layer, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs) if layer is None else layer
        self.linear = nnx.Linear(8, 10, rngs=rngs)

    def __call__(self, x):
        return self.linear(jnp.mean(nnx.relu(self.conv(x)), axis=(1, 2)))


class Counter(nnx.Variable):
    pass


class Linen(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nnx.bridge.ToLinen(_Wrapped, args=(None,))(x))


@pytest.mark.parametrize("make, match", [
    (lambda r: _Wrapped(StandardisedConv(3, 8, (3, 3), rngs=r), r),
     r"module 'conv' is a StandardisedConv, a subclass of nnx.Conv that overrides __call__ "
     r".*use nnx.Conv itself"),
    (lambda r: _Wrapped(nnx.Sequential(nnx.Conv(3, 8, (3, 3), rngs=r), nnx.LayerNorm(8, rngs=r)),
                        r),
     r"module 'conv/layers/1' is a flax nnx.LayerNorm, which the crossbar graph does not support; "
     r"supported modules: nn.Conv, nnx.Conv"),
    (lambda r: _Wrapped(nnx.Sequential(nnx.Conv(3, 8, (3, 3), rngs=r), nnx.swish), r),
     r"module '<root>': .*'logistic': a sigmoid, e.g. nn.swish .* use nn.relu"),
])
def test_nnx_refusals_name_the_path_and_the_fix(make, match):
    s = _splits(1)
    with pytest.raises(GraphError, match=match):
        _net(make(nnx.Rngs(0)), s).graph


def test_nnx_models_that_cannot_be_read_whole_are_refused_in_one_line():
    s = _splits(1)
    m = _Wrapped(None, nnx.Rngs(0))
    m.count = Counter(jnp.zeros(()))  # neither a parameter nor a statistic
    with pytest.raises(GraphError, match=r"^_Wrapped: variable 'count' is a Counter; "
                                         r"crimp_jax trains and deploys nnx.Param"):
        _net(m, s)
    with pytest.raises(GraphError, match=r"^module 'ToLinen_0' is an NNX model inside a linen "
                                         r"module \(nnx.bridge.ToLinen\).*pass the NNX model"):
        _net(Linen(), s).graph
    with pytest.raises(GraphError, match=r"^object is not a Flax module; expected a flax.linen "
                                         r"nn.Module or a flax.nnx Module"):
        _net(object(), s)


@pytest.mark.slow
def test_an_nnx_cnn_with_dropout_runs_the_whole_chain(tmp_path):
    c = get_config("tiny")
    c.prune.exclude = ("conv1/", "linear2/")
    c.train.batch_size = 10
    c.evaluate.test_per_class = 0
    c.crimp.batchnorm = "fold_per_step"  # the BatchNorm statistics taken from NNX layers
    c.evaluate.compensation = ("on",)
    splits = _splits(2)
    s = pipeline.train_and_evaluate(c, tmp_path, network=MnistStyleCNN(nnx.Rngs(0)),
                                    data=splits)
    assert s["accuracy"]["engine_exact_logits"] == 1.0, s["accuracy"]
    assert s["montecarlo"]["curves"] and s["cost"]["tiles"] <= s["cost"]["dense_tiles"]
    # re-read as trained (engine only) from a fresh instance initialised otherwise: the
    # weights come from the run's checkpoint, so the integer artifact is the run's own
    got = api.reevaluate(MnistStyleCNN(nnx.Rngs(1)), str(tmp_path), {"evaluate.chips": 0},
                         data=splits)
    assert got["engine"]["integer_engine"] == s["accuracy"]["integer_engine"]
    assert got["engine"]["engine_exact_logits"] == 1.0 and got["montecarlo"] is None
    ours = load_artifact(str(tmp_path / "evaluate" / "evaluate.chips=0" / "model_int.npz"))
    run = load_artifact(str(tmp_path / s["integer_artifact"]))
    assert ours.arrays.keys() == run.arrays.keys()
    for k in run.arrays:
        np.testing.assert_array_equal(ours.arrays[k], run.arrays[k], err_msg=k)
