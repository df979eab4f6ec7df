"""The `train` (float stage) and `crimp` (quantized stage) blocks: `OptimSpec` plus each stage's keys.

Both stages share the optimizer keys of `crimp_jax.train.optim.OptimSpec` (one spec, one
validation, one optimizer factory); each adds its own. The dataclass defaults are the run
defaults (`crimp_jax.config.base_config` is built from them).
"""

from __future__ import annotations

import dataclasses
import math

from crimp_jax.train.optim import OptimSpec
from crimp_jax.utils.blocks import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
)

PRUNE_SCHEDULES = ("zerorize_recover", "gradual")
BATCHNORM_MODES = ("folded", "fold_per_step", "corrected")
ADC_CALIBRATE_AT = ("stage_start", "phase_start")
DRAWS_IMPLS = ("auto", "vmap", "unroll")


@dataclasses.dataclass(frozen=True)
class TrainSpec(OptimSpec):
    """The float stage (BatchNorm model). Optimizer keys: see `OptimSpec`.

    Attributes:
      epochs: float training epochs (>= 0; 0: no float training, e.g. when the caller brings
        trained float variables, `crimp_jax.api`).
      batch_size, eval_batch_size: images per train / evaluation step (>= 1).
      label_smoothing: in [0, 1).
      augment: pad-4 random crop + horizontal flip, on device.
      eval_every: epochs between test evaluations (0: only at the end).
      checkpoint_every: epochs between checkpoints (>= 1).
      scan_steps: train steps fused into one jitted call with `lax.scan` (>= 1). Keep 1 on CPUs,
        where XLA runs convolutions inside a loop body about 15x slower; 10-100 on GPUs.
      seed: seed of the parameter init, batch order, augmentation and variation draws.
      quiet: hide the progress bar.
    """

    block_name = "train"
    epochs: int = 30
    batch_size: int = 128
    eval_batch_size: int = 500
    label_smoothing: float = 0.0
    augment: bool = True
    eval_every: int = 1
    checkpoint_every: int = 1
    scan_steps: int = 1
    seed: int = 0
    quiet: bool = False

    def __post_init__(self):
        super().__post_init__()
        b = self.block_name
        for name in ("batch_size", "eval_batch_size", "checkpoint_every", "scan_steps"):
            check_int(f"{b}.{name}", getattr(self, name), 1)
        check_int(f"{b}.epochs", self.epochs, 0)
        check_int(f"{b}.eval_every", self.eval_every, 0)
        check_float(f"{b}.label_smoothing", self.label_smoothing, 0.0, 1.0, hi_open=True)
        check_bool(f"{b}.augment", self.augment)
        check_int(f"{b}.seed", self.seed)
        check_bool(f"{b}.quiet", self.quiet)


@dataclasses.dataclass(frozen=True)
class CrimpSpec(OptimSpec):
    """The quantized stage (`crimp_jax.train.crimp`). Optimizer keys: see `OptimSpec`.

    Phases, in epochs: `dense_epochs` of dense QAT, `prune_epochs` of pruning, `finetune_epochs`
    with the masks frozen. Without pruning the phases are simply QAT epochs.

    Attributes:
      dense_epochs, prune_epochs, finetune_epochs: phase lengths (ints >= 0).
      ramp_epochs: > 0: cubic sparsity ramp (Zhu & Gupta 2017) over the first `ramp_epochs`
        of the prune phase (<= prune_epochs); 0: the full target from the first prune step.
      prune_schedule: 'zerorize_recover' (the paper's: epochs alternate zerorize / recover,
        counted back from a final zerorize epoch) or 'gradual' (every prune step zerorizes:
        masks recomputed from the weights after every step).
      batchnorm: 'folded' (BatchNorm folded into the kernels once, before the stage, and the
        BN-free network trained), 'fold_per_step' (BatchNorm kept: every step folds it with
        the batch statistics, gradients through them, and updates running statistics that
        evaluation and deployment fold with; a float forward of the BN model per step) or
        'corrected' (BatchNorm kept at one convolution per layer: folded with the running
        statistics, each channel corrected with the batch statistics of the folded output,
        crimp_jax/train/bn_correction.py).
      adc_aware_epochs: the last epochs of the stage train through the crossbar-faithful
        product with the run's finite ADCs and DACs (adc.bits > 0; a straight-through
        estimator: the product's value, the plain layer's gradient; the ADC full scales fixed
        when `adc_calibrate_at` says); 0: off; >= the stage's epochs: the whole stage. Costs
        the product's FLOP multiple per step (`experiments.bench`).
      adc_calibrate_at: when the calibrated ADC full scales (adc.full_scale_ref =
        'calibrated') of ADC-aware training are measured: 'stage_start' (on the dense model
        the stage starts from) or 'phase_start' (on the model as the ADC-aware phase begins:
        pruned and trained, as deployment then calibrates it; kept in the workdir's
        adc_references.json, so a resume uses the same).
      bn_freeze_epochs: 'fold_per_step', 'corrected': the last epochs of the stage fold with
        the running statistics and stop updating them (>= 0).
      bn_momentum: momentum of the running statistics, in [0, 1).
      threshold_lr: Adam rate of the log2 quantization thresholds; 0 keeps the calibrated ones.
      calib_images: training images that calibrate the thresholds (>= 1; a seeded random
        sample of the training split, `crimp_jax.data.calibration_sample`).
      distill_weight: weight a of knowledge distillation from the float model, in [0, 1]: loss
        = (1 - a) * cross-entropy + a * T^2 * KL(teacher_T || student_T); 0 is off.
      distill_temperature: T (> 0).
      variation_start_epochs: variation-aware training ('qv', 'crimp') starts this many epochs
        into the stage (>= 0), before it the devices are ideal ...
      variation_ramp_epochs: ... and sigma then rises linearly to `variation.sigma` over this
        many epochs (>= 0; 0: full sigma at once).
      variation_draws: K chips drawn per training step, loss averaged over them (>= 1; > 1 only
        for methods that train with variation).
      draws_split: K > 1: the step's batch is split into K equal groups, each read by its own
        chip (K chips per step at about one chip's forward cost; train.batch_size a multiple
        of K; 'corrected' BatchNorm takes each chip's statistics over its group, 'fold_per_step'
        folds with the whole batch's); False: every chip reads the whole batch (K forwards).
      draws_impl: how the K draws run: 'vmap', 'unroll' (K forwards in one step) or 'auto'
        ('unroll' on CPUs, where vmap over different conv weights measured 8x slower per
        draw; 'vmap' elsewhere).
      select_chips: model selection: > 0 scores the model at the end of every epoch with the
        final masks and full sigma (`selection_epochs`) on that many Monte Carlo chips over the
        validation split (`data.val_per_class`), and deploys the best-scoring epoch's model;
        0 deploys the last epoch's model (>= 0).
      select_sigma: sigma of the selection chips (>= 0; 0: ideal devices, clean accuracy).
      select_compensation: whether the selection chips self-compensate.
    """

    block_name = "crimp"
    # Defaults: the recipe that measured best on the CPU accuracy benchmark (docs/method.md
    # section 8, results/resnet20_proxy): a 10-epoch stage, BatchNorm kept, SGD with the rate
    # rewound to the float stage's peak (0.1) after a one-epoch warm-up and held until the
    # pruning ramp ends.
    optimizer: str = "sgd"
    lr: float = 0.1
    warmup_epochs: float = 1.0
    hold_epochs: float = 4.0
    dense_epochs: int = 1
    prune_epochs: int = 4
    finetune_epochs: int = 5
    ramp_epochs: int = 4
    prune_schedule: str = "zerorize_recover"
    batchnorm: str = "corrected"
    bn_freeze_epochs: float = 0.0
    adc_aware_epochs: float = 0.0
    adc_calibrate_at: str = "stage_start"
    bn_momentum: float = 0.9
    threshold_lr: float = 0.0
    calib_images: int = 500
    distill_weight: float = 0.0
    distill_temperature: float = 4.0
    variation_start_epochs: float = 5.0
    variation_ramp_epochs: float = 1.0
    variation_draws: int = 1
    draws_split: bool = False
    draws_impl: str = "auto"
    select_chips: int = 0
    select_sigma: float = 0.3
    select_compensation: bool = True

    def __post_init__(self):
        super().__post_init__()
        b = self.block_name
        for name in ("dense_epochs", "prune_epochs", "finetune_epochs", "ramp_epochs"):
            check_int(f"{b}.{name}", getattr(self, name), 0)
        if self.ramp_epochs > self.prune_epochs:
            raise ConfigError(f"{b}.ramp_epochs={self.ramp_epochs!r}: expected <= "
                              f"{b}.prune_epochs={self.prune_epochs} (the ramp runs inside the "
                              "prune phase)")
        check_choice(f"{b}.prune_schedule", self.prune_schedule, PRUNE_SCHEDULES)
        check_choice(f"{b}.batchnorm", self.batchnorm, BATCHNORM_MODES)
        check_float(f"{b}.bn_freeze_epochs", self.bn_freeze_epochs, 0.0)
        check_float(f"{b}.adc_aware_epochs", self.adc_aware_epochs, 0.0)
        check_choice(f"{b}.adc_calibrate_at", self.adc_calibrate_at, ADC_CALIBRATE_AT)
        check_float(f"{b}.bn_momentum", self.bn_momentum, 0.0, 1.0, hi_open=True)
        check_float(f"{b}.threshold_lr", self.threshold_lr, 0.0)
        check_int(f"{b}.calib_images", self.calib_images, 1)
        check_float(f"{b}.distill_weight", self.distill_weight, 0.0, 1.0)
        check_float(f"{b}.distill_temperature", self.distill_temperature, 0.0, lo_open=True)
        check_float(f"{b}.variation_start_epochs", self.variation_start_epochs, 0.0)
        check_float(f"{b}.variation_ramp_epochs", self.variation_ramp_epochs, 0.0)
        check_int(f"{b}.variation_draws", self.variation_draws, 1)
        check_bool(f"{b}.draws_split", self.draws_split)
        check_choice(f"{b}.draws_impl", self.draws_impl, DRAWS_IMPLS)
        check_int(f"{b}.select_chips", self.select_chips, 0)
        check_float(f"{b}.select_sigma", self.select_sigma, 0.0, 2.0)
        check_bool(f"{b}.select_compensation", self.select_compensation)

    @property
    def epochs(self) -> int:
        """Epochs of the whole stage."""
        return self.dense_epochs + self.prune_epochs + self.finetune_epochs

    def selection_epochs(self, prunes: bool, variation: bool) -> tuple[int, ...]:
        """Stage epochs (counted 1.., at their end) whose model is a selection candidate: the
        masks are final (after the prune phase) and sigma fully ramped in."""
        first = 1
        if prunes:
            first = max(first, self.dense_epochs + self.prune_epochs)
        if variation:
            first = max(first, math.ceil(self.variation_start_epochs + self.variation_ramp_epochs))
        return tuple(range(first, self.epochs + 1))
