"""ResNet-20 on CIFAR-10 with the CRIMP ablations, sized for a 2-core CPU.

Argument 'METHOD[,SCHEDULE]' (see crimp_common.py); SCHEDULE 'cpu' is the CPU-affordable short
schedule behind results/resnet20_cpu: 5,000 class-balanced training images, 15 float epochs,
4 quantized epochs, Monte Carlo with 20 chips on a 1,000-image test subset. Commands:
  python -m experiments.run --config=experiments/configs/resnet20_cifar10_crimp.py:fp,cpu --workdir=runs/r20/fp
  python -m launch.sweep --config=experiments/configs/resnet20_cifar10_crimp.py:q,cpu \
      --grid="quant.scale_mode=po2,float" --root=runs/r20/q --reuse_fp=runs/r20/fp
(launch/resnet20_cpu_results.sh runs the whole set: about an hour on 2 CPU cores.)
"""

from crimp_jax.config import lock
from experiments.configs import crimp_common, resnet20_cifar10


def get_config(arg: str = ""):
    method, schedule = crimp_common.parse_arg(arg, "resnet20_cifar10_crimp", ("cpu",))
    c = resnet20_cifar10.get_config("")
    c.unlock()
    crimp_common.set_method(c, method, "stem", sparsity=0.5)
    crimp_common.stage_recipe(c, 30)
    if schedule == "cpu":
        crimp_common.cpu_schedule(c, fp_epochs=15, chips=20, mc_test_per_class=100)
    elif schedule == "gpu":
        crimp_common.gpu_schedule(c, fp_epochs=60, stage_epochs=15, fp_lr=0.4)
    elif schedule == "tiny":
        crimp_common.tiny_schedule(c)
    return lock(c)
