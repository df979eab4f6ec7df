"""VGG-16 on full CIFAR-10 (float baseline).

Command:
  python -m experiments.run --config=experiments/configs/vgg16_cifar10.py:gpu --workdir=runs/vgg16
Arguments: '' (paper-length: 200 epochs, batch 128, cosine; not yet run here), 'gpu' (bf16,
batch 512, 60 epochs, cosine with warm-up; not yet run here for 60 epochs). Measured with the
'gpu' settings cut to 30 epochs (the float stage of vgg16_cifar10_crimp.py:crimp,gpu): 88.72%
at 0.359 s/epoch on an H200 (results/README.md); a reference plain Flax run: 91.4% after 256
epochs at 0.36 s/epoch.
"""

from crimp_jax.config import base_config, lock


def get_config(arg: str = ""):
    c = base_config()
    c.model.name = "vgg16"
    c.train.epochs = 200
    c.train.batch_size = 128
    c.train.lr = 0.05
    c.train.eval_every = 10
    if arg == "gpu":
        c.model.dtype = "bfloat16"
        c.train.epochs = 60
        c.train.batch_size = 512
        c.train.lr = 0.2
        c.train.warmup_epochs = 2.0
        c.train.scan_steps = 97  # 50,000 // 512 = 97 steps: one call per epoch
    elif arg:
        raise ValueError(f"vgg16_cifar10 config argument {arg!r}: expected '' or 'gpu'")
    return lock(c)
