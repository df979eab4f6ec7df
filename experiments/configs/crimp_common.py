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


def gpu_schedule(c, fp_epochs: int, stage_epochs: int, fp_lr: float):
    """bf16 float stage, batch 512, one jitted call per epoch; float32 quantized stage of
    `stage_epochs` epochs with the `stage_recipe`; 100 Monte Carlo chips."""
    c.model.dtype = "bfloat16"
    c.train.epochs = fp_epochs
    c.train.batch_size = 512
    c.train.lr = fp_lr
    c.train.warmup_epochs = 1.0
    c.train.scan_steps = 97  # 50,000 // 512: one call per epoch
    c.train.eval_every = 10
    c.train.checkpoint_every = 10
    c.train.quiet = True
    stage_recipe(c, stage_epochs)
    c.evaluate.chips = 100
    c.evaluate.sigmas = (0.1, 0.2, 0.3, 0.5)
    c.evaluate.compensation = ("on",) if c.method == "crimp" else ("off", "on")


def cpu_schedule(c, fp_epochs: int, chips: int, mc_test_per_class: int):
    """The 2-core CPU schedule: 5,000 class-balanced training images, batch 100, `fp_epochs`
    float epochs, a 4-epoch quantized stage (`stage_recipe`), Monte Carlo with `chips` chips on
    a class-balanced test subset of `mc_test_per_class` images per class. (The results of
    results/resnet20_cpu and results/resnet56_cpu were measured with the earlier folded/LARS
    stage: see results/README.md.)"""
    c.data.train_per_class = 500
    c.train.epochs = fp_epochs
    c.train.batch_size = 100
    c.train.eval_every = 5
    c.train.quiet = True
    stage_recipe(c, 4)
    c.evaluate.chips = chips
    c.evaluate.test_per_class = mc_test_per_class
    c.evaluate.batch_size = 500


def tiny_schedule(c):
    """A CPU smoke test of the same chain: 200 training images, 1 + 1 epochs, 2 chips."""
    c.data.train_per_class = 20
    c.data.test_per_class = 10
    c.train.epochs = 1
    c.train.batch_size = 50
    tiny_stage(c)
    c.evaluate.chips = 2
    c.evaluate.sigmas = (0.0, 0.3)


def tiny_stage(c):
    """A one-epoch second stage for smoke tests: one prune epoch at the full target, no
    warm-up or hold, variation from the first step."""
    c.crimp.dense_epochs, c.crimp.prune_epochs, c.crimp.finetune_epochs = 0, 1, 0
    c.crimp.ramp_epochs = 0
    c.crimp.warmup_epochs = c.crimp.hold_epochs = 0.0
    c.crimp.variation_start_epochs = c.crimp.variation_ramp_epochs = 0.0
    c.crimp.lr = 0.01


def stage_recipe(c, epochs: int, rewind: float = 1.0, dense: int = 1, prune_share: float = 0.4):
    """The second-stage recipe (the `crimp` block's defaults, docs/method.md section 8) scaled
    to a stage of `epochs` epochs: `dense` dense QAT epochs, a cubic sparsity ramp over the
    `prune_share` of the stage that prunes (zerorize-recover epochs, the block's default
    `crimp.prune_schedule`), the rest a fixed-mask fine-tune; the learning rate rewound to `rewind` x the float stage's peak
    after a one-epoch warm-up and held there until the ramp ends; variation-aware training
    ('qv', 'crimp') ramps sigma in over one epoch after it. BatchNorm stays
    (`crimp.batchnorm='corrected'`, one convolution per layer), no distillation: the block's
    defaults."""
    prune = max(1, round(prune_share * epochs))
    c.crimp.dense_epochs, c.crimp.prune_epochs = dense, prune
    c.crimp.finetune_epochs = max(0, epochs - dense - prune)
    c.crimp.ramp_epochs = prune
    c.crimp.lr = rewind * c.train.lr
    c.crimp.hold_epochs = max(0.0, dense + prune - c.crimp.warmup_epochs)
    c.crimp.variation_start_epochs = float(dense + prune)
    c.crimp.variation_ramp_epochs = 1.0
