"""ResNet-20 on full CIFAR-10 (float baseline).

Command:
  python -m experiments.run --config=experiments/configs/resnet20_cifar10.py --workdir=runs/resnet20
Arguments: '' (30 epochs, batch 128; not yet run here: estimated 5-6 h on 2 CPU cores),
'gpu' (bf16, batch 512, 100 epochs; not yet run here: estimated 1-2 minutes on one H200).
Measured: the float stage of resnet20_cifar10_crimp.py:fp,cpu (5,000 training images, 15
epochs) reached 62.3% on the 10,000 test images at 40 s/epoch on a shared 2-core CPU.
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
