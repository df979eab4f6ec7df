"""The patterns of the models researchers bring, in models written here (none is a copy): a
ResNet-18 built the way the flax ImageNet example builds its ResNets (BatchNorm with
`axis_name`, zero-initialised last scale of each residual block, a max-pool stem, projection
shortcuts), a small CNN with no train flag (as the flax MNIST example's linen CNN), train flags
by other names, and a Dropout head (the flax docs' `nn.Dropout(rate, deterministic=...)`).
NNX models: `tests/test_nnx.py`."""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax import api
from crimp_jax.data import splits_from_arrays, synthetic_split
from crimp_jax.graph import GraphError, Network
from crimp_jax.train import pipeline
from experiments.configs.quickstart import get_config


class FlaxStyleBlock(nn.Module):
    """A basic residual block in the flax ImageNet example's style: conv and norm passed in as
    partials, the block's last BatchNorm scale initialised to zero, a 1x1 projection with its
    own norm where the shape changes."""

    filters: int
    conv: type
    norm: type
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(x)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(self.filters, (3, 3))(y))
        if residual.shape != y.shape:
            residual = self.norm(name="norm_proj")(
                self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual))
        return nn.relu(residual + y)


class FlaxStyleResNet(nn.Module):
    """ResNet in the flax ImageNet example's style: `train` flag, BatchNorm(axis_name='batch'),
    a strided stem conv and a 3x3/2 max pool, stages of blocks, global mean, Dense head."""

    stage_sizes: tuple = (2, 2, 2, 2)
    num_filters: int = 8
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = functools.partial(nn.Conv, use_bias=False)
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                                 epsilon=1e-5, axis_name="batch")
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, size in enumerate(self.stage_sizes):
            for j in range(size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = FlaxStyleBlock(self.num_filters * 2 ** min(i, 1), conv, norm, strides)(x)
        return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


class NoTrainFlagCNN(nn.Module):
    """The flax MNIST example's linen CNN pattern: no train flag, no BatchNorm."""

    @nn.compact
    def __call__(self, x):
        x = nn.avg_pool(nn.relu(nn.Conv(8, (3, 3))(x)), (2, 2), (2, 2))
        x = nn.avg_pool(nn.relu(nn.Conv(16, (3, 3))(x)), (2, 2), (2, 2))
        x = nn.relu(nn.Dense(32)(x.reshape((x.shape[0], -1))))
        return nn.Dense(10)(x)


class DropoutHead(nn.Module):
    """Dropout before the classifier, switched by `training` (another flag name)."""

    @nn.compact
    def __call__(self, x, training: bool = False):
        x = nn.relu(nn.BatchNorm(use_running_average=not training)(
            nn.Conv(8, (3, 3), use_bias=False)(x)))
        x = nn.Dropout(0.5, deterministic=not training)(jnp.mean(x, axis=(1, 2)))
        return nn.Dense(10)(x)


class NegatedFlag(nn.Module):
    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.Dropout(0.5, deterministic=deterministic)(jnp.mean(x, axis=(1, 2)))
        return nn.Dense(10)(x)


class TwoFlags(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False, deterministic: bool = True):
        return nn.Dense(10)(jnp.mean(nn.Conv(8, (3, 3))(x), axis=(1, 2)))


def _splits(per_class=2, shape=(32, 32, 3)):
    tr = synthetic_split("train", per_class, 0, shape=shape)
    te = synthetic_split("test", per_class, 0, shape=shape)
    return splits_from_arrays((tr.images, tr.labels), (te.images, te.labels), name="own")


def _net(module, splits, train_arg="auto"):
    i = splits.info
    return Network(module, i.image_shape, i.mean_int, i.std, type(module).__name__, train_arg)


def _config(exclude):
    c = get_config("tiny")
    c.prune.exclude = exclude
    c.train.batch_size = 10
    c.evaluate.test_per_class = 0
    c.crimp.batchnorm = "folded"
    c.evaluate.compensation = ("on",)
    return c


def test_train_flags_are_found_in_the_signature():
    s = _splits(1)
    assert _net(FlaxStyleResNet(), s).train_arg == "train"
    assert _net(NoTrainFlagCNN(), s).train_arg is None
    assert _net(DropoutHead(), s).train_arg == "training"
    neg = _net(NegatedFlag(), s)
    assert neg.train_arg == "deterministic" and neg._kwargs(True) == {"deterministic": False}
    with pytest.raises(GraphError, match=r"several train flags \(train, deterministic\).*"
                                         r"train_arg"):
        _net(TwoFlags(), s)
    assert _net(TwoFlags(), s, "deterministic").train_arg == "deterministic"
    with pytest.raises(GraphError, match=r"model.train_arg='is_training': NoTrainFlagCNN.__call__ "
                                         r"takes no such argument"):
        _net(NoTrainFlagCNN(), s, "is_training")


def test_batchnorm_with_axis_name_trains_outside_any_mapped_axis():
    """BatchNorm(axis_name='batch') in training: the statistics are the batch's, exactly as
    without an axis name."""
    s = _splits(1)
    net = _net(FlaxStyleResNet(stage_sizes=(1,)), s)
    assert net.axis_names == ("batch",)
    v = net.init(jax.random.key(0))
    logits, upd = net.apply(v, s.train.images, train=True, mutable=["batch_stats"])
    # the reference, by hand: the axis bound over one device, whose batch is the whole batch
    x = net.normalize(s.train.images)
    want, want_upd = jax.vmap(
        lambda v, x: net.module.apply(v, x, train=True, mutable=["batch_stats"]),
        in_axes=None, axis_name="batch", axis_size=1)(v, x)
    np.testing.assert_allclose(logits, want[0], rtol=1e-6, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b[0], rtol=1e-6, atol=1e-6),
                 upd, want_upd)
    assert not np.allclose(jax.tree.leaves(upd)[0], jax.tree.leaves(v["batch_stats"])[0])


def test_dropout_draws_per_step_in_training_and_is_the_identity_in_evaluation():
    s = _splits(1)
    net = _net(DropoutHead(), s)
    v = net.init(jax.random.key(0))
    a, _ = net.apply(v, s.train.images, train=True, mutable=["batch_stats"],
                     rng=jax.random.key(1))
    b, _ = net.apply(v, s.train.images, train=True, mutable=["batch_stats"],
                     rng=jax.random.key(2))
    assert not np.allclose(a, b)  # another step, another dropout mask
    e1, e2 = (net.apply(v, s.train.images) for _ in range(2))
    np.testing.assert_array_equal(e1, e2)
    assert "Dropout" not in net.graph.describe()
    net.check_graph()


# ADC-aware training (crimp.adc_aware_epochs) through 4-bit per-slice ADCs and 1-bit DACs, its
# full scales calibrated when that phase begins
ADC_AWARE = {"adc.bits": 4, "dac.bits": 1, "adc.full_scale_ref": "calibrated",
             "adc.full_scale_per": "slice", "crimp.adc_aware_epochs": 0.5,
             "crimp.adc_calibrate_at": "phase_start"}


@pytest.mark.slow
@pytest.mark.parametrize("module, exclude, overrides", [
    # one block per stage keeps an identity block (stage 0) and strided projection blocks
    (FlaxStyleResNet(stage_sizes=(1, 1, 1, 1)), ("conv_init/", "Dense_0/"), {}),
    (NoTrainFlagCNN(), ("Conv_0/", "Dense_1/"), ADC_AWARE),
], ids=["flax_resnet", "no_train_flag_cnn_adc_aware"])
def test_public_model_patterns_run_the_whole_chain(tmp_path, module, exclude, overrides):
    """(A Dropout head runs the whole chain in `tests/test_graph.py`'s OwnNet.) The MNIST-style
    CNN trains the last half of its one-epoch stage through its ADCs (its convolutions and
    dense layers), its full scales written when that phase begins; the deployed integer
    engine is bit-exact with the fake-quantized ADC path. (The same on the ResNet costs about
    45 s more here, mostly compiling.) The CNN's finished run is then re-read under 5-bit ADCs
    with its module and arrays (`crimp_jax.api.reevaluate`), its own files untouched (the NNX
    re-read: `tests/test_nnx.py`); another module, other arrays, or the arrays left out are
    refused."""
    c = _config(exclude)
    for dotted, value in overrides.items():
        block, key = dotted.split(".")
        c[block][key] = value
    splits = _splits(2)
    s = pipeline.train_and_evaluate(c, tmp_path, network=module, data=splits)
    assert s["accuracy"]["engine_exact_logits"] == 1.0, s["accuracy"]
    assert s["montecarlo"]["curves"] and s["cost"]["tiles"] <= s["cost"]["dense_tiles"]
    if overrides:
        assert s["accuracy"]["integer_engine"] == s["accuracy"]["fake_quant_adc"]
        refs = json.loads((tmp_path / "adc_references.json").read_text())
        assert refs["step"] > 0 and len(refs["references"]) == len(s["montecarlo"][
            "adc_references"])  # one per crossbar layer

    # another module, other arrays, or the arrays left out: refused before anything is restored
    with pytest.raises(ValueError, match=r"trained on other data \(.*there, .* here\)"):
        api.reevaluate(module, str(tmp_path), {}, data=_splits(1))
    with pytest.raises(ValueError, match=rf"trained on {type(module).__name__!r}; the module "
                                         r"given is 'DropoutHead'"):
        api.reevaluate(DropoutHead(), str(tmp_path), {}, data=splits)
    with pytest.raises(ValueError, match=r"trained on the data 'own' given to crimp_jax.api.run"):
        api.reevaluate(module, str(tmp_path), {"adc.bits": 5})
    # as `python -m experiments.evaluate --workdir=...` reads it: the registered model.name
    from crimp_jax.train import finished
    with pytest.raises(ValueError, match=rf"trained on the module {type(module).__name__!r} "
                                         r"given to crimp_jax.api.run, not on the registered "
                                         r"model.name .*crimp_jax.api.reevaluate\("):
        finished.reevaluate(finished.recorded_config(tmp_path), tmp_path, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    if not overrides:
        return  # (the re-read costs the ResNet ~20 s more here, the CNN ~0)
    # re-read without training, under other ADCs: the new integer artifact's engine equals the
    # fake-quantized 5-bit ADC path to the logit; the run's files are unchanged
    from crimp_jax.integer import load_artifact
    from crimp_jax.train.checkpoint import folder_digest

    before = folder_digest(tmp_path)
    got = api.reevaluate(module, str(tmp_path), {  # the engine alone: no Monte Carlo
        "adc.bits": 5, "adc.full_scale_ref": "calibrated", "adc.full_scale_per": "slice",
        "evaluate.chips": 0}, data=splits)
    out = tmp_path / "evaluate" / ("adc.bits=5,adc.full_scale_ref=calibrated,"
                                   "adc.full_scale_per=slice,evaluate.chips=0")
    assert json.loads((out / "evaluation.json").read_text()) == got
    eng = got["engine"]
    assert eng["integer_engine"] == eng["fake_quant_adc"] and eng["max_logit_diff"] == 0.0, eng
    assert eng["engine_exact_logits"] == 1.0 and eng["test_images"] == s["test_images"]
    assert load_artifact(str(out / "model_int.npz")).header["periphery"]["adc"]["bits"] == 5
    assert got["montecarlo"] is None
    after = folder_digest(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("evaluate/")} == before
