"""Quickstart: ResNet-20 on a class-balanced CIFAR-10 subset, on a laptop CPU.

Command:
  python -m experiments.run --config=experiments/configs/quickstart.py --workdir=runs/quickstart
Expected: about 5 minutes on 2 CPU cores; test accuracy about 60% on the 2,000-image test subset.
`:tiny` (a 3-layer CNN, 200 training images, 1 epoch) is a seconds-long smoke test.
"""

from crimp_jax.config import base_config, lock


def get_config(arg: str = ""):
    c = base_config()
    c.model.name = "resnet20"
    c.data.train_per_class = 200
    c.data.test_per_class = 100
    c.train.epochs = 10
    c.train.batch_size = 50
    c.train.lr = 0.05
    c.train.eval_every = 5
    if arg == "tiny":
        c.model.name = "tiny_cnn"
        c.data.train_per_class = 20
        c.data.test_per_class = 10
        c.train.epochs = 1
        c.train.batch_size = 50
    elif arg:
        raise ValueError(f"quickstart config argument {arg!r}: expected '' or 'tiny'")
    return lock(c)
