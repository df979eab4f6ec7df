"""The graph read from a model: a network defined only in this file goes through the whole chain
with no change to crimp_jax; unsupported ops are refused by module path before any compile; the
op registry; ResNet-18 (the model added as one file)."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.data import splits_from_arrays, synthetic_split
from crimp_jax.graph import REGISTRY, GraphError, Network, fold_params
from crimp_jax.graph.ops import primitive_kinds
from crimp_jax.integer import engine_apply, load_artifact
from crimp_jax.integer.engine import device_arrays
from crimp_jax.models import build_model, build_network
from crimp_jax.train import pipeline
from experiments.configs.quickstart import get_config

SHAPE = (16, 16, 3)


class OwnNet(nn.Module):
    """A researcher's network: projection shortcut (1x1 conv + BN), a two-branch channel
    concatenation, average pooling, global average pooling, Dropout (the flax docs' pattern:
    its own 'dropout' stream in training, the identity in evaluation and in the graph) and a
    Dense head."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        def bn(name):
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)

        x = nn.relu(bn("bn0")(nn.Conv(8, (3, 3), use_bias=False, name="conv0")(x)))
        y = nn.relu(bn("bn1")(nn.Conv(16, (3, 3), (2, 2), use_bias=False, name="conv1")(x)))
        y = bn("bn2")(nn.Conv(16, (3, 3), padding=1, use_bias=False, name="conv2")(y))
        s = bn("bn_proj")(nn.Conv(16, (1, 1), (2, 2), padding="VALID", use_bias=False,
                                  name="proj")(x))
        x = nn.relu(y + s)
        x = nn.relu(jnp.concatenate([nn.Conv(8, (1, 1), name="branch_a")(x),
                                     nn.Conv(8, (3, 3), name="branch_b")(x)], axis=-1))
        x = nn.avg_pool(x, (2, 2), (2, 2))
        x = nn.Dropout(0.2, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
        return nn.Dense(self.num_classes, name="head")(x)


def _splits(per_class=10, shape=SHAPE):
    tr = synthetic_split("train", per_class, 0, shape=shape)
    te = synthetic_split("test", per_class, 0, shape=shape)
    return splits_from_arrays((tr.images, tr.labels), (te.images, te.labels), name="own")


def _net(module, splits):
    i = splits.info
    return Network(module, i.image_shape, i.mean_int, i.std, type(module).__name__)


def test_own_network_graph_reads_every_op_and_folds_to_the_same_function():
    splits = _splits()
    net = _net(OwnNet(), splits)
    g = net.graph
    kinds = [op["op"] for op in g.ops]
    for kind in ("conv", "relu", "requant", "add", "concat", "sumpool", "scale", "sum", "dense"):
        assert kind in kinds, kind
    assert "batchnorm" not in kinds  # all folded
    assert [op["name"] for op in g.layers] == ["conv0", "conv1", "conv2", "proj", "branch_a",
                                               "branch_b", "head"]
    assert g.taps == ["relu0", "relu1", "relu2", "relu3", "mean0"]
    assert g.input_taps()["head/kernel"] == "mean0"
    assert g.input_taps()["proj/kernel"] == "relu0"
    assert {op["name"]: op.get("bn") for op in g.layers}["proj"] == "bn_proj"
    conv2 = next(op for op in g.ops if op["name"] == "conv2")
    assert conv2["padding"] == ((1, 1), (1, 1))
    v = net.init(jax.random.key(0))
    v = jax.tree.map(lambda a: a, v)
    # non-trivial statistics so the fold is tested
    stats = jax.tree.map(lambda a: a + 0.3 if a.ndim else a, v["batch_stats"])
    x = jnp.asarray(splits.train.images[:4])
    want = net.apply({"params": v["params"], "batch_stats": stats}, x)
    got = g.apply(fold_params(g, v["params"], stats), x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _tiny_crimp_config(exclude=("conv0/", "head/")):
    c = get_config("tiny")
    c.prune.exclude = exclude
    c.train.batch_size = 20
    c.evaluate.test_per_class = 0
    c.evaluate.compensation = ("on",)  # both curves: tests/test_crimp_pipeline.py
    return c


@pytest.mark.slow
def test_own_network_goes_through_the_whole_chain_with_no_change_to_crimp_jax(tmp_path):
    s = pipeline.train_and_evaluate(_tiny_crimp_config(), tmp_path, network=OwnNet(),
                                    data=_splits())
    assert s["model"] == "OwnNet" and s["method"] == "crimp"
    assert s["dataset"]["image_shape"] == list(SHAPE)
    acc = s["accuracy"]
    assert acc["engine_exact_logits"] == 1.0 and acc["max_logit_diff"] == 0.0
    assert s["prune"]["sparsity"] > 0.3
    assert s["cost"]["tiles"] < s["cost"]["dense_tiles"]
    curves = s["montecarlo"]["curves"]
    assert curves and all(len(per) == 2 for per in curves.values())
    from tests.test_integer_engine import float_dtypes_in_jaxpr

    art = load_artifact(str(tmp_path / s["integer_artifact"]))
    assert [st["op"] for st in art.ops].count("concat") == 1
    jaxpr = jax.make_jaxpr(lambda a, x: engine_apply(art.ops, a, x))(
        device_arrays(art), jnp.zeros((2, *SHAPE), jnp.uint8))
    assert float_dtypes_in_jaxpr(jaxpr) == set()


class _Base(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.body(x, train)
        return nn.Dense(10, name="head")(jnp.mean(x, axis=(1, 2)))


class WithLayerNorm(_Base):
    def body(self, x, train):
        return nn.relu(nn.LayerNorm(name="ln")(nn.Conv(8, (3, 3), name="conv0")(x)))


class Depthwise(_Base):
    def body(self, x, train):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        return nn.relu(nn.Conv(8, (3, 3), feature_group_count=8, name="dw")(x))


class Tanh(_Base):
    def body(self, x, train):
        return jnp.tanh(nn.Conv(8, (3, 3), name="conv0")(x))


class BatchNormAfterAdd(_Base):
    def body(self, x, train):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        y = nn.Conv(8, (3, 3), name="conv1")(x) + x
        return nn.relu(nn.BatchNorm(use_running_average=not train, name="bn_add")(y))


class PreActivation(_Base):
    """A pre-activation block: the shortcut reads the conv before its BatchNorm."""

    def body(self, x, train):
        x = nn.Conv(8, (3, 3), use_bias=False, name="conv0")(x)
        y = nn.BatchNorm(use_running_average=not train, name="bn1")(x)
        return nn.relu(nn.Conv(8, (3, 3), name="conv1")(nn.relu(y)) + x)


class Swish(_Base):
    def body(self, x, train):
        return nn.swish(nn.Conv(8, (3, 3), name="conv0")(x))


class InModelNormalisation(_Base):
    def body(self, x, train):
        return nn.relu(nn.Conv(8, (3, 3), name="conv0")(x - 0.5))


class AvgPoolNoPad(_Base):
    def body(self, x, train):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        return nn.avg_pool(x, (3, 3), padding="SAME", count_include_pad=False)


class OwnBatchNorm(_Base):
    """A BatchNorm written as the model's own class (not nn.BatchNorm)."""

    def body(self, x, train):
        x = nn.Conv(8, (3, 3), name="conv0")(x)
        mean, var = jnp.mean(x, (0, 1, 2)), jnp.var(x, (0, 1, 2))
        return nn.relu((x - mean) * jax.lax.rsqrt(var + 1e-5))


class SignedInput(_Base):
    def body(self, x, train):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        return nn.relu(nn.Conv(8, (3, 3), name="conv2")(nn.Conv(8, (3, 3), name="conv1")(x)))


class StdConv(nn.Conv):
    """A convolution that standardises its kernel per output channel before use (weight
    standardisation), written here after the pattern of the public ResNets that use it (e.g.
    the BiT ResNets' StdConv)."""

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (*self.kernel_size, x.shape[-1], self.features))
        kernel = (kernel - kernel.mean((0, 1, 2))) / (kernel.std((0, 1, 2)) + 1e-5)
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))


class WeightStandardised(_Base):
    def body(self, x, train):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        return nn.relu(StdConv(8, (3, 3), use_bias=False, name="std")(x))


class LeakyRelu(_Base):
    def body(self, x, train):
        return nn.leaky_relu(nn.Conv(8, (3, 3), name="conv0")(x))


class Relu6(_Base):
    def body(self, x, train):
        return jax.nn.relu6(nn.Conv(8, (3, 3), name="conv0")(x))


class LogSoftmaxHead(nn.Module):
    """Log-probabilities out, as many ported PyTorch classifiers end (`F.log_softmax`)."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        return nn.log_softmax(nn.Dense(10, name="head")(jnp.mean(x, axis=(1, 2))))


class DictOutput(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(8, (3, 3), name="conv0")(x))
        return {"logits": nn.Dense(10, name="head")(jnp.mean(x, axis=(1, 2)))}


@pytest.mark.parametrize("module,words", [
    (DictOutput(), ("returns a dict holding one array", "the array of logits itself")),
    (LeakyRelu(), ("'<root>'", "'ge'", "leaky_relu", "use nn.relu")),
    (Relu6(), ("'min'", "relu6", "use nn.relu")),
    (LogSoftmaxHead(), ("'reduce_max'", "log_softmax at the end", "return the logits")),
    (WeightStandardised(), ("'std'", "StdConv", "overrides __call__", "nn.Conv itself")),
    (WithLayerNorm(), ("'ln'", "LayerNorm")),
    (Depthwise(), ("'dw'", "feature_group_count=8")),
    (Tanh(), ("'<root>'", "'tanh'")),
    (BatchNormAfterAdd(), ("'bn_add'", "cannot be folded: it reads add", "post-activation")),
    (PreActivation(), ("'bn1'", "also feeds", "pre-activation block", "post-activation")),
    (Swish(), ("'<root>'", "'logistic'", "nn.swish", "use nn.relu")),
    (InModelNormalisation(), ("'sub'", "input normalisation inside the model")),
    (AvgPoolNoPad(), ("count_include_pad=False", "count_include_pad=True")),
    (OwnBatchNorm(), ("a BatchNorm class of the model's own", "use nn.BatchNorm")),
    (SignedInput(), ("'conv2'", "may be negative")),
])
def test_unsupported_op_is_refused_by_module_path_before_any_compile(tmp_path, module, words):
    with pytest.raises(GraphError) as e:
        _net(module, _splits(2)).graph
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    wd = tmp_path / "wd"
    with pytest.raises(GraphError):
        pipeline.train_and_evaluate(_tiny_crimp_config(("conv0/",)), wd, network=module,
                                    data=_splits(2))
    assert not wd.exists() or not any(wd.iterdir())  # refused before anything was written


class ZeroInitResidual(nn.Module):
    """A residual block whose last BatchNorm scale starts at zero (as the flax ImageNet example's
    ResNet blocks do): at init that branch is silent, which `check_graph` must not take for a
    proof."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(8, (3, 3), use_bias=False, name="conv0")(x))
        y = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1")(
            nn.Conv(8, (3, 3), use_bias=False, name="conv1")(x)))
        y = nn.BatchNorm(use_running_average=not train, scale_init=nn.initializers.zeros,
                         name="bn2")(nn.Conv(8, (3, 3), use_bias=False, name="conv2")(y))
        return nn.Dense(10, name="head")(jnp.mean(nn.relu(x + y), axis=(1, 2)))


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet20"])
def test_the_read_graph_computes_the_module_function(name):
    build_network(name).check_graph()
    # a bfloat16 float stage (the GPU configs) is compared in float32, as the graph computes
    build_network(name, dtype=jnp.bfloat16).check_graph()
    _net(OwnNet(), _splits(2)).check_graph()


def test_a_misread_layer_is_refused_naming_the_first_layer_that_differs(monkeypatch):
    """The check itself: a graph whose conv1 computes something else (simulated by changing
    that op's output) is refused naming conv1, not a later layer; a zero-initialised residual
    branch is no blind spot (its misread is found too)."""
    from crimp_jax.graph.graph import Graph
    real = Graph.values

    def misread(target):
        def values(self, params, images, act=None, xbar=None):
            env = real(self, params, images, act, xbar)
            out = next(op["out"] for op in self.ops if op["name"] == target)
            env = dict(env)
            env[out] = env[out] * 1.1
            return env
        return values

    net = _net(ZeroInitResidual(), _splits(2))
    net.check_graph()
    for target in ("conv1", "conv2"):
        monkeypatch.setattr(Graph, "values", misread(target))
        with pytest.raises(GraphError, match=f"compute the module's function: {target} differs"):
            net.check_graph()


class Rematerialised(nn.Module):
    """Convolutions wrapped in nn.remat (gradient checkpointing, as memory-bound models do)."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = nn.remat(nn.Conv)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn0")(
            conv(8, (3, 3), use_bias=False, name="conv0")(x)))
        x = nn.relu(conv(8, (3, 3), strides=2, name="conv1")(x))
        return nn.Dense(10, name="head")(jnp.mean(x, axis=(1, 2)))


def test_a_module_under_nn_remat_is_read_and_checked(monkeypatch):
    """Its layers' outputs are traced inside remat (not recorded: that raised a tracer leak);
    the layers after them and the logits still prove the graph, and find a misread (here
    conv1 read without its padding)."""
    net = _net(Rematerialised(), _splits(2))
    assert [op["name"] for op in net.graph.layers] == ["conv0", "conv1", "head"]
    net.check_graph()
    conv1 = next(op for op in net.graph.ops if op["name"] == "conv1")
    monkeypatch.setitem(conv1, "padding", ((0, 0), (0, 0)))
    with pytest.raises(GraphError, match="compute the module's function: head differs"):
        net.check_graph()


class AdaptivePoolHead(nn.Module):
    """The PyTorch ResNets' head as it is often ported to flax: an adaptive average pool to
    1x1 (`jnp.mean(..., keepdims=True)`), a 1x1 convolution on it, a flatten, a classifier."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn0")(
            nn.Conv(8, (3, 3), use_bias=False, name="conv0")(x)))
        x = nn.relu(nn.Conv(16, (3, 3), strides=2, name="conv1")(x))
        x = jnp.mean(x, axis=(1, 2), keepdims=True)
        x = nn.relu(nn.Conv(16, (1, 1), name="conv2")(x))
        return nn.Dense(10, name="head")(x.reshape(x.shape[0], -1))


def test_a_global_mean_with_keepdims_is_read_and_runs_integer_only():
    """(N, C) -> (N, 1, 1, C) is the `expand` op: read, checked against the module, and the
    integer engine equals the fake-quantized graph on every logit."""
    import functools

    from crimp_jax.integer import convert, make_engine
    from crimp_jax.quant import fake_quant_apply, init_quant_state

    splits = _splits(2)
    net = _net(AdaptivePoolHead(), splits)
    g = net.graph
    assert [op["op"] for op in g.ops if op["op"] in ("sum", "expand", "scale", "flatten")] == [
        "sum", "expand", "scale", "flatten"]
    assert "mean0" in [op["name"] for op in g.ops]  # sum, expand, divide: still the mean
    net.check_graph()
    v = net.init(jax.random.key(0))
    params = fold_params(g, v["params"], v["batch_stats"])
    x = jnp.asarray(splits.train.images[:8])
    cfg = dict(weight_bits=8, act_bits=8)
    q = init_quant_state(g, params, x, cfg)
    art = convert(g, params, q, cfg, model_name="adaptive_pool_head")
    li = np.asarray(make_engine(art)(x))
    lf = np.asarray(jax.jit(functools.partial(fake_quant_apply, g, qcfg=cfg))(params, q, x))
    np.testing.assert_array_equal(li.astype(np.float64) * 2.0 ** art.output_exponent, lf)
    assert len(np.unique(li)) > li.size // 2


class HalfPrecisionLayer(_Base):
    """One layer given dtype=bfloat16 in the module's code (not a module `dtype` attribute,
    which `Network.in_float32` replaces)."""

    def body(self, x, train):
        return nn.relu(nn.Conv(8, (3, 3), dtype=jnp.bfloat16, name="conv0")(x))


def test_a_layer_computing_in_half_precision_is_refused_saying_so():
    with pytest.raises(GraphError, match=r"conv0 differs by up to .*layer 'conv0' computes in "
                                         r"bfloat16 \(its dtype argument\).*float32"):
        _net(HalfPrecisionLayer(), _splits(2)).check_graph()


def test_every_registered_op_says_how_it_is_run_converted_and_read():
    for kind, d in REGISTRY.items():
        assert callable(d.apply) and callable(d.convert) and callable(d.engine), kind
        assert d.nonneg in ("always", "inputs", "never")
    read_from = primitive_kinds()
    assert read_from["concatenate"] == "concat" and read_from["reduce_window_max"] == "maxpool"
    assert [k for k, d in REGISTRY.items() if d.crossbar] == ["conv", "dense"]


def test_resnet18_has_the_cifar_variants_parameter_count_and_projection_shortcuts():
    net = build_network("resnet18")
    n = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(net.abstract_variables()["params"]))
    assert n == 11_173_962  # 3x3 stem, [2, 2, 2, 2] basic blocks, 1x1 projections, 10 classes
    names = [op["name"] for op in net.graph.layers]
    assert names[0] == "stem" and names[-1] == "fc" and len(names) == 21
    assert [n for n in names if n.endswith("proj")] == ["s1b0/proj", "s2b0/proj", "s3b0/proj"]
    assert build_model("resnet18", num_classes=100).num_classes == 100


def test_resnet18_narrow_reads_the_same_graph_and_computes_its_function():
    """The registered ResNet-18 class made narrow (widths 8-16 instead of 64-512) keeps its
    topology (3x3 stem, [2, 2, 2, 2] basic blocks, stride-2 stages, the three projection
    shortcuts, 21 crossbar layers), and its read graph computes the module's function. The
    whole chain (training, integer engine exact, Monte Carlo, cost) on a ResNet-18 of this
    topology runs in `tests/test_real_models.py` (built as the flax ImageNet example builds
    its ResNets); the full width's parameter count is the test above."""
    from crimp_jax.models.resnet18 import ResNet18

    i = _splits(2).info
    net = Network(ResNet18(widths=(8, 16, 16, 16)), i.image_shape, i.mean_int, i.std, "resnet18")
    assert [op["name"] for op in net.graph.layers] == \
        [op["name"] for op in build_network("resnet18").graph.layers]
    net.check_graph()


def _synthetic_dataset_config(dataset, **over):
    c = _tiny_crimp_config(("conv0/", "fc/"))
    c.data.dataset, c.data.source = dataset, "synthetic"
    c.data.train_per_class, c.data.test_per_class = 4, 2
    c.train.batch_size = 20
    for k, v in over.items():
        blk, key = k.split(".")
        c[blk][key] = v
    return c


@pytest.mark.slow
def test_grey_images_of_another_dataset_run_the_chain_and_a_non_shift_mean_is_refused_first(
        tmp_path):
    # mnist's 28x28 grey images: the tiny CNN's global average pool is over 7x7 = 49 positions,
    # which the integer engine cannot divide by a shift: refused before anything trains.
    with pytest.raises(Exception) as e:
        pipeline.train_and_evaluate(_synthetic_dataset_config("mnist"), tmp_path / "a")
    assert "mean0 divides by 49" in str(e.value) and "evaluate.engine" in str(e.value)
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
    s = pipeline.train_and_evaluate(
        _synthetic_dataset_config("mnist", **{"evaluate.engine": False}), tmp_path / "b")
    assert s["dataset"]["image_shape"] == [28, 28, 1] and s["dataset"]["num_classes"] == 10
    assert len(s["dataset"]["mean_int"]) == 1 and s["montecarlo"]["curves"]
    # a re-read of the finished run asking for the engine is refused alike, before any restore
    from crimp_jax.config import config_from_dict
    from crimp_jax.summary import read_summary
    from crimp_jax.train.finished import reevaluate
    c = config_from_dict(read_summary(tmp_path / "b").data["config"])
    c.evaluate.engine = True
    with pytest.raises(Exception) as e:
        reevaluate(c, tmp_path / "b", tmp_path / "b_engine")
    assert "mean0 divides by 49" in str(e.value) and "evaluate.engine" in str(e.value)
    assert not (tmp_path / "b_engine").exists()


def test_the_class_count_comes_from_the_data():
    from crimp_jax.config import parse_config
    from crimp_jax.data import load_splits

    run = parse_config(_synthetic_dataset_config("cifar100"))
    splits = load_splits(run.data)
    net = pipeline.make_network(run, splits.info)
    assert splits.info.num_classes == 100 and net.graph.num_classes == 100
    assert net.graph.layers[-1]["features"] == 100


class SmallBN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn0")(
            nn.Conv(8, (3, 3), use_bias=False, name="conv0")(x)))
        return nn.Dense(10, name="head")(jnp.mean(x, axis=(1, 2)))


def test_a_researchers_float_variables_are_used_as_given_or_refused_by_path(tmp_path,
                                                                          monkeypatch):
    """`cj.run(module, config, workdir, variables=...)` with train.epochs=0: the float stage
    starts from them, leaf for leaf, and only evaluates them (its accuracy is theirs, computed
    here directly); variables of another module, a class for an instance, or data as a tuple
    are refused before anything is written."""
    from crimp_jax import api
    seen = []
    real_fit = pipeline.fit

    def fit(task, state, *args, **kwargs):
        seen.append(state)
        return real_fit(task, state, *args, **kwargs)

    monkeypatch.setattr(pipeline, "fit", fit)
    splits = _splits(2)
    net = _net(SmallBN(), splits)
    v = net.init(jax.random.key(3))
    v = {"params": v["params"],  # statistics away from the init, so they must be the ones used
         "batch_stats": jax.tree.map(lambda a: a + 0.5, v["batch_stats"])}
    c = _tiny_crimp_config(("conv0/", "head/"))
    c.method, c.train.epochs = "fp", 0
    s = api.run(SmallBN(), c, str(tmp_path / "given"), data=splits, variables=v)
    logits = net.apply(v, jnp.asarray(splits.test.images))
    want = float(np.mean(np.argmax(np.asarray(logits), -1) == splits.test.labels))
    assert s["accuracy"]["fp"] == pytest.approx(want) and s["stages"][0]["epochs"] == 0
    chex.assert_trees_all_equal(seen[0].params["params"], v["params"])
    chex.assert_trees_all_equal(seen[0].model_state["batch_stats"], v["batch_stats"])
    wrong = {"params": v["params"], "batch_stats": {"bn0": {"mean": jnp.zeros(4)}}}
    bad = [
        (dict(variables=wrong), GraphError, r"variables: batch_stats/bn0/var is missing "
                                            r"\(shape \(8,\)\); batch_stats/bn0/mean has shape "
                                            r"\(4,\), SmallBN's is \(8,\)"),
        (dict(variables=v, data=tuple(splits)[:2]), ValueError, r"data: expected the Splits "
                                                                r"of crimp_jax.api.splits_"),
        (dict(model=SmallBN, variables=v), GraphError, r"SmallBN is a module class; pass an "
                                                       r"instance of it, SmallBN\(...\)"),
    ]
    for kwargs, err, want in bad:
        wd = tmp_path / "bad"
        kwargs = {"model": SmallBN(), "data": splits, **kwargs}
        with pytest.raises(err, match=want):
            api.run(kwargs.pop("model"), c, str(wd), **kwargs)
        assert not wd.exists() or not any(wd.iterdir())
