"""The CPU accuracy benchmark: ResNet-20, 5,000 training images, the whole 10,000-image test set.

One float model (15 epochs) is shared by every quantized run (`launch.sweep --reuse_fp`); the
float reference `fp_long` is trained for the same total epochs as float + second stage (15 +
10), because extra epochs alone raise an under-trained model. Arguments:

  fp        the shared float model (15 epochs)
  fp_long   the float reference, 25 epochs
  q         W8A8 power-of-two quantization
  qp50      + crossbar-aligned pruning at 50%      qp80   at 80%
  qv        q + variation-aware training at sigma 0.3
  crimp     50% pruning + variation-aware training at sigma 0.3 with self-compensation

BatchNorm: `crimp.batchnorm='fold_per_step'`, the block's default when these rows were
measured (`resnet20_converged.py`'s crimp_bnc rows measure 'corrected', the default since
2026-12-07). Monte Carlo: 20 chips per sigma in (0, 0.3, 0.5), compensation off and on, on a
class-balanced 2,000-image test subset; the integer engine's accuracy is on the whole test
set. Seeds: data 0, training 0, chips 1234. The whole benchmark: `bash
launch/accuracy_proxy.sh` (results in results/resnet20_proxy/, with the measured runtime).
"""

from crimp_jax.config import lock
from experiments.configs import crimp_common, resnet20_cifar10

FP_EPOCHS, STAGE_EPOCHS = 15, 10
ARGS = ("fp", "fp_long", "q", "qp50", "qp80", "qv", "crimp")


def get_config(arg: str = "crimp"):
    if arg not in ARGS:
        raise ValueError(f"resnet20_proxy config argument {arg!r}: expected one of {ARGS}")
    method = {"fp_long": "fp", "qp50": "qp", "qp80": "qp"}.get(arg, arg)
    c = resnet20_cifar10.get_config("")
    c.unlock()
    crimp_common.set_method(c, method, "stem", sparsity=0.8 if arg == "qp80" else 0.5)
    c.data.train_per_class = 500
    c.train.epochs = FP_EPOCHS + (STAGE_EPOCHS if arg == "fp_long" else 0)
    c.train.batch_size = 100
    c.train.eval_every = 5
    c.train.quiet = True
    crimp_common.stage_recipe(c, STAGE_EPOCHS)
    c.crimp.batchnorm = "fold_per_step"  # what every recorded row ran (default until 2026-12-07)
    c.evaluate.chips = 20
    c.evaluate.sigmas = (0.0, 0.3, 0.5)
    c.evaluate.test_per_class = 200
    c.evaluate.batch_size = 500
    c.evaluate.compensation = ("off", "on")
    return lock(c)
