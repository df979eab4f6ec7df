"""Bring your own Flax model: the whole CRIMP chain on a network defined right here.

    python examples/own_model.py            # or: python -m examples.own_model
                                            # about a minute on 2 CPU cores

Your arrays (here: synthetic uint8 images with a learnable class signal) -> float training -> CRIMP stage (power-of-two QAT,
crossbar-aligned pruning, variation-aware training) -> integer artifact, checked bit for bit
-> Monte Carlo over chips -> cost. The summary lands in runs/mynet/summary.json. Everything
from the imports to `cj.run` is the README's "Bring your own model" snippet, verbatim
(tests/test_examples.py checks it). Real data: `crimp_jax.data.load_splits` with
`data.dataset` any tensorflow-datasets name, or your own arrays in `splits_from_arrays`.
"""

import flax.linen as nn
import jax.numpy as jnp

import crimp_jax.api as cj
from crimp_jax.data import synthetic_split


class MyNet(nn.Module):  # standard layers on normalised images; no crimp_jax code inside
    @nn.compact
    def __call__(self, x, train: bool = False):  # the train flag is found by its name
        bn = lambda: nn.BatchNorm(use_running_average=not train)  # noqa: E731
        x = nn.relu(bn()(nn.Conv(16, (3, 3), use_bias=False)(x)))
        y = nn.relu(bn()(nn.Conv(32, (3, 3), strides=2, use_bias=False)(x)))
        y = bn()(nn.Conv(32, (3, 3), use_bias=False)(y))
        x = nn.relu(y + bn()(nn.Conv(32, (1, 1), strides=2, use_bias=False)(x)))  # projection
        x = nn.avg_pool(x, (2, 2), (2, 2))
        return nn.Dense(10)(jnp.mean(x, axis=(1, 2)))


train, test = synthetic_split("train", 30), synthetic_split("test", 10)  # your uint8 arrays here
splits = cj.splits_from_arrays((train.images, train.labels), (test.images, test.labels))
print(cj.network(MyNet(), splits).graph.describe())  # the graph read from the module

config = cj.base_config()  # every key: docs/config.md
config.method = "crimp"
config.train.epochs, config.train.batch_size = 6, 50
config.crimp.dense_epochs, config.crimp.prune_epochs, config.crimp.finetune_epochs = 1, 1, 1
config.crimp.ramp_epochs, config.crimp.hold_epochs, config.crimp.variation_start_epochs = 0, 1, 1
config.prune.target_sparsity, config.prune.exclude = 0.5, ("Conv_0/", "Dense_0/")
config.variation.sigma = 0.3
config.evaluate.chips, config.evaluate.sigmas = 4, (0.0, 0.3)
summary = cj.run(MyNet(), config, "runs/mynet", data=splits)  # or variables=your_params
print(summary["accuracy"])
mc = summary["montecarlo"]["curves"]
print(f"float {summary['accuracy']['fp']:.2%}  CRIMP {summary['accuracy']['integer_engine']:.2%}"
      f" (integer engine, exact logits {summary['accuracy']['engine_exact_logits']:.0%})  "
      f"sigma 0.3 {mc[next(iter(mc))]['0.3']['mean']:.2%}  crossbars "
      f"{summary['cost']['dense_tiles']} -> {summary['cost']['tiles']} tiles")
# Read the finished run again under other chip settings, without training (its files stay as
# they are; tests/test_real_models.py runs this on a public model pattern):
#   cj.reevaluate(MyNet(), "runs/mynet", {"adc.bits": 8, "evaluate.chips": 20}, data=splits)
