"""A seconds-long stand-in with the argument form of the paper configs, for smoke tests of the
launch scripts: tiny_cnn on the synthetic data source, one float and one CRIMP epoch, 2 chips.

  python -m experiments.run --config=experiments/configs/tiny_crimp.py:crimp --workdir=runs/t
Argument 'METHOD[,SCHEDULE]' as in crimp_common.py; every SCHEDULE gives the same tiny run.
"""

from crimp_jax.config import lock
from experiments.configs import crimp_common, quickstart


def get_config(arg: str = ""):
    method, _ = crimp_common.parse_arg(arg, "tiny_crimp", ("cpu", "gpu_paper"))
    c = quickstart.get_config("tiny")
    c.unlock()
    crimp_common.set_method(c, method, "conv0", sparsity=0.5)
    c.data.source = "synthetic"
    c.train.quiet = True
    return lock(c)
