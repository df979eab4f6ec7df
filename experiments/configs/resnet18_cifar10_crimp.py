"""ResNet-18 (CIFAR variant, projection shortcuts; crimp_jax/models/resnet18.py) CRIMP ablations
on CIFAR-10 or, with `--config.data.dataset=cifar100`, CIFAR-100.

Command:
  python -m experiments.run --config=experiments/configs/resnet18_cifar10_crimp.py:METHOD[,SCHEDULE]
Arguments: METHOD in fp, q, qp, qv, crimp; SCHEDULE 'gpu' (default: bf16 float stage of 30
epochs, a 10-epoch quantized stage, 100 chips; not yet run: no GPU was lent when it was
written) or 'tiny' (CPU smoke test, 200 images, 1 + 1 epochs). 50% crossbar-aligned pruning
with the first conv and the classifier dense, sigma 0.3, W8A8 power-of-two.
"""

from crimp_jax.config import base_config, lock
from experiments.configs import crimp_common


def get_config(arg: str = ""):
    method, schedule = crimp_common.parse_arg(arg or "crimp,gpu", "resnet18_cifar10_crimp")
    c = base_config()
    c.model.name = "resnet18"
    crimp_common.set_method(c, method, "stem", 0.5)
    if schedule in ("gpu", "paper"):
        crimp_common.gpu_schedule(c, 30, 10, 0.4)
    else:
        crimp_common.tiny_schedule(c)
    return lock(c)
