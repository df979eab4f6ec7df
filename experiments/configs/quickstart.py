"""Quickstart: the whole CRIMP chain on ResNet-20 with a class-balanced CIFAR-10 subset, on CPU.

Command:
  python -m experiments.run --config=experiments/configs/quickstart.py --workdir=runs/quickstart
Chain: float training (8 epochs, BatchNorm) -> a 7-epoch second stage with BatchNorm kept and
folded per step: power-of-two W8A8 quantization-aware training with crossbar-aligned pruning
(50%, zerorize-recover) and then variation-aware training (sigma 0.3, self-compensation) ->
integer-only engine -> Monte Carlo over 8 chips -> pruning report -> cost model.
Measured (2 CPU cores, 2026-12-04, jax 0.10.2 / flax 0.12.8): 4 min 15 s; float 45.40% on the
1,000-image test subset (2,000 training images; inputs divided by the archive's own channel
std), CRIMP 46.60% (integer engine identical on every image), 44.23% +/- 1.68 over 8 chips at
sigma 0.3 with self-compensation (34.08% +/- 3.32 without), 50% sparsity, 57 -> 33 crossbars,
5.6x less power and 16.7x less area than the original model (README: an earlier measurement in
another package set).
A demo of the chain on a weak float model; the accuracy benchmark is resnet20_proxy.py.
`:tiny` (a 3-layer CNN, 200 training images, 2 epochs in all) is a seconds-long smoke test.
"""

from crimp_jax.config import base_config, lock
from experiments.configs import crimp_common


def get_config(arg: str = ""):
    c = base_config()
    c.model.name = "resnet20"
    c.data.train_per_class = 200
    c.data.test_per_class = 100
    c.train.epochs = 8
    c.train.batch_size = 50
    c.train.lr = 0.05
    c.train.eval_every = 4
    c.method = "crimp"
    crimp_common.stage_recipe(c, 7)  # 1 dense, 3 ramp, 3 fine-tune epochs; lr rewound to 0.05

    c.prune.target_sparsity = 0.5
    c.prune.exclude = ("stem/", "fc/")  # keep the first conv and the classifier dense
    c.variation.sigma = 0.3
    c.evaluate.chips = 8
    c.evaluate.sigmas = (0.0, 0.3, 0.5)
    c.evaluate.test_per_class = 50
    c.evaluate.batch_size = 500
    if arg == "tiny":
        c.model.name = "tiny_cnn"
        c.data.train_per_class = 20
        c.data.test_per_class = 10
        c.train.epochs = 1
        c.train.batch_size = 50
        crimp_common.tiny_stage(c)
        c.prune.exclude = ("conv0/", "fc/")
        c.evaluate.chips = 2
        c.evaluate.sigmas = (0.0, 0.3)
        c.evaluate.test_per_class = 10
    elif arg:
        raise ValueError(f"quickstart config argument {arg!r}: expected '' or 'tiny'")
    return lock(c)
