"""VGG-16 on CIFAR-10 with CRIMP (quantization + crossbar-aligned pruning + variation adaptation).

Commands (argument 'METHOD[,SCHEDULE]', see crimp_common.py):
  python -m experiments.run --config=experiments/configs/vgg16_cifar10_crimp.py:crimp,gpu --workdir=runs/vgg16_crimp
  python -m experiments.run --config=experiments/configs/vgg16_cifar10_crimp.py:qp --workdir=runs/vgg16_qp
Settings: W8A8 power-of-two, 88.25% crossbar-aligned sparsity (the conference paper's figure),
sigma 0.3 write variation (log-normal per cell) with self-compensation, 128x128 crossbars of
2-bit cells. Schedules: 'paper' (200 float + 60 CRIMP epochs; not yet run here), 'gpu'
(30 float + 15 CRIMP epochs, 100 Monte Carlo chips: 134 s on one H200, 88.72% float ->
78.84% CRIMP, 77.94% +/- 0.29 at sigma 0.3, measured before prune.score_norm='layer_rms'
became the default; results/README.md), 'tiny' (CPU smoke test, a few minutes: VGG-16
compiles slowly on a CPU).
"""

from crimp_jax.config import lock
from experiments.configs import crimp_common, vgg16_cifar10


def get_config(arg: str = ""):
    method, schedule = crimp_common.parse_arg(arg, "vgg16_cifar10_crimp", ("gpu_paper",))
    c = vgg16_cifar10.get_config("")
    c.unlock()
    crimp_common.set_method(c, method, "conv0", sparsity=0.8825)
    crimp_common.stage_recipe(c, 60)
    if schedule in ("gpu", "gpu_paper"):
        short = schedule == "gpu"
        crimp_common.gpu_schedule(c, fp_epochs=30 if short else 200,
                                  stage_epochs=15 if short else 40, fp_lr=0.2)
    elif schedule == "tiny":
        crimp_common.tiny_schedule(c)
    return lock(c)
