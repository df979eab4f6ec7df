"""ResNet-56 on full CIFAR-10 (float baseline).

Command:
  python -m experiments.run --config=experiments/configs/resnet56_cifar10.py:gpu --workdir=runs/resnet56
Arguments: '' (the paper-length schedule: 182 epochs, batch 128, step decay at 50%/75%; about
93% on the original CIFAR-10 pixels; not yet run here), 'gpu' (bf16, batch 512, 92 epochs,
cosine with warm-up; not yet run here for 92 epochs). Measured with the same 'gpu' settings
cut to 30 epochs (the float stage of resnet56_cifar10_crimp.py:crimp,gpu): 88.37% at 0.945
s/epoch on an H200 (results/README.md); a reference plain Flax run: 90.5% after 92 epochs at
1.0 s/epoch.
"""

from crimp_jax.config import base_config, lock


def get_config(arg: str = ""):
    c = base_config()
    c.model.name = "resnet56"
    c.train.epochs = 182
    c.train.batch_size = 128
    c.train.lr = 0.1
    c.train.schedule = "step"
    c.train.step_milestones = (0.5, 0.75)
    c.train.eval_every = 10
    if arg == "gpu":
        c.model.dtype = "bfloat16"
        c.train.epochs = 92
        c.train.batch_size = 512
        c.train.lr = 0.4
        c.train.schedule = "cosine"
        c.train.warmup_epochs = 2.0
        c.train.scan_steps = 97  # 50,000 // 512 = 97 steps: one call per epoch
    elif arg:
        raise ValueError(f"resnet56_cifar10 config argument {arg!r}: expected '' or 'gpu'")
    return lock(c)
