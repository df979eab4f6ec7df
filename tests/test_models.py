"""Model registry, parameter counts, BN folding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.models import MODEL_NAMES, build_model
from crimp_jax.models.fold import fold_batchnorm


def n_params(name):
    model = build_model(name)
    v = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.uint8)))
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
def test_fold_batchnorm_preserves_function(name):
    model = build_model(name)
    x = jax.random.randint(jax.random.key(1), (4, 32, 32, 3), 0, 256).astype(jnp.uint8)
    v = model.init(jax.random.key(0), x)
    keys = iter(jax.random.split(jax.random.key(2), 1000))
    v = jax.tree.map(lambda a: a + 0.2 * jax.random.normal(next(keys), a.shape), v)
    v["batch_stats"] = jax.tree.map(lambda a: jnp.abs(a) + 0.5, v["batch_stats"])
    y = model.apply(v, x)
    folded = build_model(name, folded=True)
    yf = folded.apply({"params": fold_batchnorm(v["params"], v["batch_stats"], name)}, x)
    np.testing.assert_allclose(yf, y, rtol=1e-4, atol=1e-4 * float(jnp.abs(y).max()))
