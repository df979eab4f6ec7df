"""ResNet-56 on CIFAR-10 with CRIMP (quantization + crossbar-aligned pruning + variation adaptation).

Commands (argument 'METHOD[,SCHEDULE]', see crimp_common.py):
  python -m experiments.run --config=experiments/configs/resnet56_cifar10_crimp.py:crimp,gpu --workdir=runs/resnet56_crimp
Settings: W8A8 power-of-two, 50% crossbar-aligned sparsity, sigma 0.3 write variation with
self-compensation, 128x128 crossbars of 2-bit cells. Schedules: 'paper' (182 float + 60 CRIMP
epochs; not yet run here), 'gpu' (30 float + 10 CRIMP epochs, 100 Monte Carlo chips; on an
H200 the training and engine took 158 s, the Monte Carlo sweep did not fit its time box; with
20 + 8 epochs and no Monte Carlo: 87.15% float -> 80.79% CRIMP in 170 s; results/README.md),
'tiny' (CPU smoke test, about 7 minutes), and 'cpu' (METHOD,cpu): the 2-core CPU schedule behind
results/resnet56_cpu (5,000 class-balanced training images, 10 float epochs, 4 quantized
epochs, Monte Carlo with 100 chips on a 500-image test subset, compensation off and on):
  bash launch/resnet56_cpu_results.sh
"""

from crimp_jax.config import lock
from experiments.configs import crimp_common, resnet56_cifar10


def get_config(arg: str = ""):
    method, schedule = crimp_common.parse_arg(arg, "resnet56_cifar10_crimp",
                                              ("cpu", "gpu_paper"))
    c = resnet56_cifar10.get_config("")
    c.unlock()
    crimp_common.set_method(c, method, "stem", sparsity=0.5)
    crimp_common.stage_recipe(c, 60)
    if schedule == "cpu":
        c.train.lr = 0.05  # at 0.1 without warm-up the 56-layer net sat at chance after 2 epochs
        c.train.schedule = "cosine"
        c.train.warmup_epochs = 1.0
        crimp_common.cpu_schedule(c, fp_epochs=10, chips=100, mc_test_per_class=50)
        c.data.test_per_class = 100
        c.evaluate.sigmas = (0.0, 0.1, 0.3, 0.5)
        c.evaluate.compensation = ("off", "on")
    elif schedule in ("gpu", "gpu_paper"):
        c.train.schedule = "cosine"
        short = schedule == "gpu"
        crimp_common.gpu_schedule(c, fp_epochs=30 if short else 182,
                                  stage_epochs=10 if short else 30, fp_lr=0.4)
    elif schedule == "tiny":
        crimp_common.tiny_schedule(c)
    return lock(c)
