"""`crimp.batchnorm='corrected'`: the folded network, corrected per channel with the batch
statistics of its own layer outputs, computes the BatchNorm model in training mode (flax's
nn.BatchNorm with batch statistics is the independent reference), and the running statistics
follow flax's update; off (frozen), it is the deployed folded network exactly."""

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.data import synthetic_split
from crimp_jax.graph import fold_params
from crimp_jax.graph.network import _generic_variables
from crimp_jax.models import build_network
from crimp_jax.train.bn_correction import bn_layers, corrector, running_update

MOMENTUM = 0.9  # crimp_jax.models.layers.ConvBN's BatchNorm


def _setup():
    net = build_network("tiny_cnn", (16, 16, 3), (120, 110, 100), (60.0, 61.0, 62.0))
    v = _generic_variables(net.init(jax.random.key(0)), 0)
    images = synthetic_split("train", 3, 0, shape=(16, 16, 3)).images
    return net, v, images


def _corrected(net, v, images, active=True):
    g, rec = net.graph, {}
    layers = bn_layers(g, v["params"], v["batch_stats"])
    out = g.apply(fold_params(g, v["params"], v["batch_stats"]), images,
                  post=corrector(layers, jnp.asarray(active), rec))
    return out, layers, rec


def test_corrected_folded_network_is_the_bn_model_with_batch_statistics():
    net, v, images = _setup()
    want, upd = net.apply(v, images, train=True, mutable=["batch_stats"])
    got, layers, rec = _corrected(net, v, images)
    assert set(layers) == {op["name"] for op in net.graph.layers if op.get("bn")} != set()
    scale = float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(got, want, atol=2e-4 * scale)
    new = running_update(layers, v["batch_stats"], rec, MOMENTUM, jnp.asarray(True))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 new, upd["batch_stats"])
    # a leading axis of chips is averaged
    two = {k: tuple(jnp.stack([a, a]) for a in ms) for k, ms in rec.items()}
    jax.tree.map(np.testing.assert_array_equal,
                 running_update(layers, v["batch_stats"], two, MOMENTUM, jnp.asarray(True)), new)


def test_frozen_correction_is_the_deployed_folded_network():
    net, v, images = _setup()
    got, layers, rec = _corrected(net, v, images, active=False)
    g = net.graph
    np.testing.assert_array_equal(got, g.apply(fold_params(g, v["params"], v["batch_stats"]),
                                               images))
    jax.tree.map(np.testing.assert_array_equal,
                 running_update(layers, v["batch_stats"], rec, MOMENTUM, jnp.asarray(False)),
                 v["batch_stats"])


def test_a_zero_scale_channel_stays_finite_and_keeps_its_statistics():
    net, v, images = _setup()
    bn = next(op["bn"] for op in net.graph.layers if op.get("bn"))
    layer, *_ = bn.split("/")
    scale = v["params"][layer]["bn"]["scale"]
    v["params"][layer]["bn"]["scale"] = scale.at[0].set(0.0)

    def loss(params):
        out, _, _ = _corrected(net, {**v, "params": params}, images)
        return jnp.sum(out ** 2)

    grads = jax.grad(loss)(v["params"])
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(grads))
    _, layers, rec = _corrected(net, v, images)
    new = running_update(layers, v["batch_stats"], rec, MOMENTUM, jnp.asarray(True))
    for k in ("mean", "var"):
        assert new[layer]["bn"][k][0] == v["batch_stats"][layer]["bn"][k][0]
        assert not np.allclose(new[layer]["bn"][k][1:], v["batch_stats"][layer]["bn"][k][1:])
