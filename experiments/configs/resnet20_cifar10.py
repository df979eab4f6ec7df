"""ResNet-20 on full CIFAR-10 (float baseline).

Command:
  python -m experiments.run --config=experiments/configs/resnet20_cifar10.py --workdir=runs/resnet20
Arguments: '' (CPU-affordable: 30 epochs, about 2.5 h on 2 CPU cores, about 89% expected),
'gpu' (bf16, batch 512, 100 epochs; about 2 minutes on one H100/H200, about 91% expected).
"""

from crimp_jax.config import base_config, lock


def get_config(arg: str = ""):
    c = base_config()
    c.model.name = "resnet20"
    c.train.epochs = 30
    c.train.batch_size = 128
    c.train.lr = 0.1
    c.train.eval_every = 5
    if arg == "gpu":
        c.model.dtype = "bfloat16"
        c.train.epochs = 100
        c.train.batch_size = 512
        c.train.lr = 0.4
        c.train.warmup_epochs = 2.0
        c.train.scan_steps = 97  # 50,000 // 512 = 97 steps: one call per epoch
        c.train.eval_every = 10
    elif arg:
        raise ValueError(f"resnet20_cifar10 config argument {arg!r}: expected '' or 'gpu'")
    return lock(c)
