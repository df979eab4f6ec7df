"""Model registry, parameter counts, BN folding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.graph import fold_params
from crimp_jax.models import MODEL_NAMES, build_model, build_network
from crimp_jax.utils.paths import flatten


def n_params(name):
    v = build_network(name).abstract_variables()
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v["params"]))


@pytest.mark.parametrize("name,expected", [
    ("vgg16", 14_724_042),     # 13 conv (no bias) + 13 BN + Dense 512->10 with bias
    ("resnet56", 853_018),     # He et al.: 0.85M
    ("resnet20", 269_722),     # He et al.: 0.27M
    ("resnet32", 464_154),     # He et al.: 0.46M
])
def test_parameter_counts(name, expected):
    assert n_params(name) == expected


def test_vgg16_count_by_hand():
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    cin = [3] + widths[:-1]
    convs = sum(9 * a * b for a, b in zip(cin, widths))
    bn = sum(2 * w for w in widths)
    assert n_params("vgg16") == convs + bn + 512 * 10 + 10


def test_unknown_model_lists_valid_ones():
    with pytest.raises(ValueError) as e:
        build_model("resnet57")
    for name in MODEL_NAMES:
        assert name in str(e.value)


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet20"])
def test_fold_params_preserves_function(name):
    """The folded graph (BatchNorm and input std folded into the kernels) computes the BN
    model's eval function on uint8 images, with non-trivial statistics and input std."""
    net = build_network(name, mean_int=(125, 123, 114), std=(62.99, 62.09, 66.70))
    x = jax.random.randint(jax.random.key(1), (4, 32, 32, 3), 0, 256).astype(jnp.uint8)
    v = net.init(jax.random.key(0), x)
    keys = iter(jax.random.split(jax.random.key(2), 1000))
    v = jax.tree.map(lambda a: a + 0.2 * jax.random.normal(next(keys), a.shape), v)
    v["batch_stats"] = jax.tree.map(lambda a: jnp.abs(a) + 0.5, v["batch_stats"])
    y = net.apply(v, x)
    graph = net.graph
    folded = fold_params(graph, v["params"], v["batch_stats"])
    assert set(flatten(folded)) == {f"{op['name']}/{k}" for op in graph.layers
                                    for k in ("kernel", "bias")}
    yf = graph.apply(folded, x)
    assert float(jnp.abs(y).max()) > 0
    np.testing.assert_allclose(yf, y, rtol=1e-4, atol=1e-4 * float(jnp.abs(y).max()))
