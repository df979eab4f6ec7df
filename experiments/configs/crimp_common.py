"""Shared pieces of the paper-reproduction configs: argument parsing and the CRIMP blocks.

Config arguments are 'METHOD[,SCHEDULE]': METHOD in fp, q, qp, qv, crimp (the ablations of
docs/method.md section 5) and SCHEDULE in paper (default), gpu (short GPU schedule), tiny (CPU smoke
test on a subset).
"""

from crimp_jax.config import METHODS

SCHEDULES = ("paper", "gpu", "tiny")


def parse_arg(arg: str, name: str, extra_schedules: tuple = ()):
    """'METHOD[,SCHEDULE]' -> (method, schedule); `extra_schedules` are a config's own."""
    parts = [p for p in (arg or "crimp").split(",") if p]
    schedules = SCHEDULES + tuple(extra_schedules)
    method = parts[0]
    schedule = parts[1] if len(parts) > 1 else "paper"
    if method not in METHODS or schedule not in schedules or len(parts) > 2:
        raise ValueError(f"{name} config argument {arg!r}: expected 'METHOD[,SCHEDULE]' with "
                         f"METHOD in {METHODS} and SCHEDULE in {schedules}")
    return method, schedule


def set_method(c, method: str, first_layer: str, sparsity: float, sigma: float = 0.3):
    """Turns on the transforms of `method` with the paper's settings."""
    c.method = method
    c.prune.target_sparsity = sparsity
    c.prune.exclude = (f"{first_layer}/", "fc/")  # first conv and classifier stay dense
    c.variation.sigma = sigma if method in ("qv", "crimp") else 0.0
    c.variation.compensation = method == "crimp"


def gpu_schedule(c, fp_epochs: int, crimp_epochs: tuple, fp_lr: float):
    """bf16 float stage, batch 512, one jitted call per epoch; float32 quantized stage."""
    c.model.dtype = "bfloat16"
    c.train.epochs = fp_epochs
    c.train.batch_size = 512
    c.train.lr = fp_lr
    c.train.warmup_epochs = 1.0
    c.train.scan_steps = 97  # 50,000 // 512: one call per epoch
    c.train.eval_every = 10
    c.train.checkpoint_every = 10
    c.train.quiet = True
    c.crimp.dense_epochs, c.crimp.prune_epochs, c.crimp.finetune_epochs = crimp_epochs
    c.crimp.ramp_epochs = max(0, crimp_epochs[1] - 2)  # cubic ramp, last 2 at full sparsity
    c.crimp.lr = 0.003
    c.evaluate.chips = 100
    c.evaluate.sigmas = (0.1, 0.2, 0.3, 0.5)
    c.evaluate.compensation = ("on",) if c.method == "crimp" else ("off", "on")


def cpu_schedule(c, fp_epochs: int, chips: int, mc_test_per_class: int):
    """The 2-core CPU schedule: 5,000 class-balanced training images, batch 100, `fp_epochs`
    float epochs, 1 + 3 quantized epochs, Monte Carlo with `chips` chips on a class-balanced
    test subset of `mc_test_per_class` images per class."""
    c.data.train_per_class = 500
    c.train.epochs = fp_epochs
    c.train.batch_size = 100
    c.train.eval_every = 5
    c.train.quiet = True
    c.crimp.dense_epochs, c.crimp.prune_epochs, c.crimp.finetune_epochs = 1, 3, 0
    c.crimp.ramp_epochs = 2
    c.crimp.lr = 0.003
    c.evaluate.chips = chips
    c.evaluate.test_per_class = mc_test_per_class
    c.evaluate.batch_size = 500


def tiny_schedule(c):
    """A CPU smoke test of the same chain: 200 training images, 1 + 1 epochs, 2 chips."""
    c.data.train_per_class = 20
    c.data.test_per_class = 10
    c.train.epochs = 1
    c.train.batch_size = 50
    c.crimp.dense_epochs, c.crimp.prune_epochs, c.crimp.finetune_epochs = 0, 1, 0
    c.crimp.ramp_epochs = 0
    c.evaluate.chips = 2
    c.evaluate.sigmas = (0.0, 0.3)


def stage_recipe(c, epochs: int, dense: int = 1, prune_share: float = 0.4):
    """Phase lengths of a second stage of `epochs` epochs: `dense` dense QAT epochs, a pruning
    ramp over `prune_share` of the stage (masks recomputed every step with
    `crimp.prune_schedule='gradual'`), the rest a fixed-mask fine-tune; the learning rate is
    held at its peak until the ramp ends, and variation-aware training ('qv', 'crimp') ramps
    sigma in over one epoch after it."""
    prune = max(1, round(prune_share * epochs))
    c.crimp.dense_epochs, c.crimp.prune_epochs = dense, prune
    c.crimp.finetune_epochs = max(0, epochs - dense - prune)
    c.crimp.ramp_epochs = prune
    c.crimp.hold_epochs = max(0.0, dense + prune - c.crimp.warmup_epochs)
    c.crimp.variation_start_epochs = float(dense + prune)
    c.crimp.variation_ramp_epochs = 1.0
