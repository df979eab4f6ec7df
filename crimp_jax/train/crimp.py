"""The CRIMP stage: one training process composing every parameter transform in the loss.

    latent params --(pruning masks, in the optimizer)--> pruned latent
      --(BatchNorm folded: with the batch statistics, or once before the stage)--> folded
      --(power-of-two fake quantization, STE)--> {path: (q, e)}
      --(a fresh chip per step: crossbar variation + self-compensation, `variation.perturb`)-->
      kernels --> forward of the BN-folded model with fake-quantized activations --> loss
      (cross-entropy, optionally distilled from the float model)

Ablations (`method`): 'q' quantization; 'qp' + pruning; 'qv' + variation-aware training;
'crimp' all three. The model files are the same for all of them.

Phases, in epochs of the `crimp` block (`CrimpSpec`): `dense_epochs` of dense QAT, then
`prune_epochs` of pruning (zerorize-recover or gradual: `prune_schedule`), then
`finetune_epochs` with the masks frozen. Without pruning the phases are simply QAT epochs.

BatchNorm (`crimp.batchnorm`):
  'folded'         BN and the input std are folded into the kernels once (running statistics
                   of the float model) and the BN-free network is trained.
  'fold_per_step'  the float model's BatchNorm stays: every training step runs the float
                   network on the batch to get each BN's batch statistics (gradients flow
                   through them), folds them into the kernels, and trains the fake-quantized
                   folded network; the running statistics follow the batch ones
                   (`bn_momentum`) and stop for the last `bn_freeze_epochs` (then the step
                   folds with them). Evaluation and deployment fold with the running
                   statistics, so the integer engine sees one fixed folded network.
  'corrected'      BatchNorm kept at one convolution per layer: the step folds with the
                   running statistics (the deployed kernels) and corrects each channel of the
                   folded output with its batch statistics (`crimp_jax.train.bn_correction`);
                   the running statistics follow, and stop with the correction for the last
                   `bn_freeze_epochs`.

A training step draws its chip with the same `variation.perturb` call as Monte Carlo (the same
masks and per-layer weight bits): in the prune phases' zerorized steps and the fine-tune, the
pruned crossbar rows are absent from the chip exactly as on a deployed one; in dense and
recover steps nothing is masked.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from crimp_jax.graph import fold_params
from crimp_jax.graph.calls import layer_calls
from crimp_jax.graph.ops import module_kind
from crimp_jax.periphery.reader import crossbar_reader, ideal_reads
from crimp_jax.prune import (
    ZerorizeSchedule,
    apply_masks,
    is_zerorized,
    zerorize_recover,
)
from crimp_jax.quant import fake_quant_apply, init_quant_state, make_plan
from crimp_jax.train.bn_correction import bn_layers, corrector, running_update
from crimp_jax.train.loop import Task, cross_entropy
from crimp_jax.train.optim import make_optimizer
from crimp_jax.train.state import TrainState
from crimp_jax.utils.paths import flatten, unflatten
from crimp_jax.variation import draw_keys, perturb
from crimp_jax.variation.perturb import read_chip


@dataclasses.dataclass(frozen=True)
class StageModels:
    """The two views of one network the stage needs: the BatchNorm model (a
    `crimp_jax.graph.Network`: float stage, the teacher, batch statistics) and its folded graph
    (`crimp_jax.graph.Graph`: fake quantization, deployment)."""

    name: str
    bn: Any
    folded: Any


def zerorize_schedule(c, steps_per_epoch: int) -> ZerorizeSchedule:
    """The pruning phases of `crimp` block `c` in optimizer steps."""
    return ZerorizeSchedule(
        warmup_steps=c.dense_epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
        prune_epochs=max(1, c.prune_epochs), ramp_steps=c.ramp_epochs * steps_per_epoch,
        finetune_steps=c.finetune_epochs * steps_per_epoch,
        gradual=c.prune_schedule == "gradual")


def make_crimp_optimizer(c, steps_per_epoch: int):
    """The `crimp` block's optimizer for the weights (`train.optim.make_optimizer`: SGD, LARS
    or Adam with its schedule) and Adam or nothing for the quantization thresholds.

    A rounded log2 threshold that crosses an integer doubles or halves a scale, so moving the
    thresholds at the weights' rate makes the loss jump (measured: loss 1.5 -> 6-9 on ResNet-20
    at lr 1e-2 and still 1.5 -> 3.9 at 1e-4); a separate small-step Adam does not."""
    tx_w, schedule = make_optimizer(c, steps_per_epoch, c.epochs)
    tx_t = optax.adam(c.threshold_lr) if c.threshold_lr > 0 else optax.set_to_zero()

    def labels(params):
        return {k: jax.tree.map(lambda _, k=k: "t" if k == "quant" else "w", v)
                for k, v in params.items()}

    return optax.multi_transform({"w": tx_w, "t": tx_t}, labels), schedule


def masks_of(opt_state):
    """The pruning masks held by the optimizer state (None without pruning)."""
    return getattr(opt_state, "masks", None)


def deployed_params(params, opt_state):
    """Trainable tree with the pruning masks applied (what a chip is programmed with)."""
    masks = masks_of(opt_state)
    return params if masks is None else apply_masks(params, masks)


def training_sigma(run, step, steps_per_epoch: int):
    """Write-variation sigma of training step `step` (traced): 0 before
    `crimp.variation_start_epochs`, then a linear ramp to `variation.sigma` over
    `crimp.variation_ramp_epochs`."""
    c = run.crimp
    start = c.variation_start_epochs * steps_per_epoch
    ramp = c.variation_ramp_epochs * steps_per_epoch
    t = jnp.asarray(step, jnp.float32) - start
    frac = jnp.clip(t / ramp, 0.0, 1.0) if ramp > 0 else (t >= 0).astype(jnp.float32)
    return jnp.float32(run.variation.sigma) * frac


def batch_statistics(bn_model, params, images) -> dict:
    """{'<bn module path>': {'mean', 'var'}} of every BatchNorm's input on `images`, from one
    training-mode forward of the float BN model (differentiable w.r.t. params), nested like
    the model's batch_stats collection."""
    rec = {}

    def recorder(call, next_fun):
        if module_kind(call.module) == "batchnorm":
            x = call.args[0].astype(jnp.float32)
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axes)
            rec[call.path] = (mean, jnp.mean(jnp.square(x - mean), axes))
        return next_fun(*call.args, **call.kwargs)

    with layer_calls(recorder):
        bn_model.apply(params, images, train=True, mutable=["batch_stats"])
    return unflatten({f"{p}/{k}": v for p, (m, var) in rec.items()
                      for k, v in (("mean", m), ("var", var))})


def ema(running, batch, momentum: float):
    """Running statistics after one batch: momentum * running + (1 - momentum) * batch."""
    return jax.tree.map(lambda r, b: momentum * r + (1.0 - momentum) * jax.lax.stop_gradient(b),
                        running, batch)


def fold_for_step(run, models: StageModels, latent, model_state, images, train: bool, step,
                  steps_per_epoch: int):
    """(folded params, new model_state) of one step: see the module docstring."""
    c = run.crimp
    if c.batchnorm == "folded":
        return latent, model_state
    running = model_state["batch_stats"]
    if not train or c.batchnorm == "corrected":  # 'corrected': the forward corrects
        return fold_params(models.folded, latent, running), model_state
    freeze_step = (c.epochs - c.bn_freeze_epochs) * steps_per_epoch

    def with_batch(_):
        stats = batch_statistics(models.bn, {"params": latent, "batch_stats": running}, images)
        return stats, ema(running, stats, c.bn_momentum)

    def frozen(_):
        return running, running

    if c.bn_freeze_epochs == 0:
        stats, new_running = with_batch(None)
    else:
        stats, new_running = jax.lax.cond(step >= freeze_step, frozen, with_batch, None)
    return (fold_params(models.folded, latent, stats),
            {**model_state, "batch_stats": new_running})


def active_masks(masks, opt_state, schedule: ZerorizeSchedule | None):
    """The masks a training chip is programmed with at this step: the optimizer's masks where
    the latent weights are pruned (zerorized or fine-tune steps), all ones otherwise."""
    if masks is None:
        return None
    flat = {p.removeprefix("params/"): m for p, m in flatten(masks).items()}
    zerorized = is_zerorized(opt_state.count - 1, schedule)
    return {p: jnp.where(zerorized, m, jnp.ones_like(m)) for p, m in flat.items()}


def distillation_loss(student, teacher, labels, weight: float, temperature: float,
                      label_smoothing: float = 0.0):
    """(1 - w) * cross-entropy + w * T^2 * KL(softmax(teacher/T) || softmax(student/T)).

    student (..., batch, classes) (leading axes: K variation draws, averaged), teacher
    (batch, classes)."""
    ce = cross_entropy(student, labels, label_smoothing)
    if weight == 0:
        return ce
    t = jax.nn.log_softmax(jax.lax.stop_gradient(teacher) / temperature, -1)
    s = jax.nn.log_softmax(student / temperature, -1)
    kl = jnp.sum(jnp.exp(t) * (t - s), -1).mean()
    return (1.0 - weight) * ce + weight * temperature ** 2 * kl


def crimp_task(run, models: StageModels, steps_per_epoch: int, periphery=None,
               late_periphery=None) -> Task:
    """The quantized stage of `run.method` as a `Task` for `train.loop.fit`.

    With `crimp.variation_draws` K > 1 a training forward draws K chips (keys fold_in(key, d),
    d < K), runs the batch through each (`vmap` over the draws, or K unrolled forwards:
    `crimp.draws_impl`) and returns logits (K, batch, classes): the loss is then the mean over
    draws of each draw's loss. With `crimp.draws_split` chip d reads only images
    [d B/K, (d + 1) B/K) of the batch and the logits are (batch, classes) in batch order. K = 1
    uses `key` itself.

    With `crimp.adc_aware_epochs` the training forward of the stage's last epochs reads the
    chip through the ADCs (`Task.late`: a second compiled step from the first such step on,
    so the plain step carries none of the product's graph). Its ADC full scales are
    `periphery`'s, or, with `late_periphery` (a callable of the training state), those it
    returns for the state at the phase's first step (`Task.late_setup`:
    `crimp.adc_calibrate_at='phase_start'`).
    """
    use, c = run.uses, run.crimp
    draws, impl = c.variation_draws, draws_impl(c)
    plan = make_plan(models.folded, run.quant)
    adc_from = None  # the step ADC-aware training starts at (crimp.adc_aware_epochs)
    if c.adc_aware_epochs > 0:
        from crimp_jax.evaluate.chips import periphery_of
        periphery = periphery or periphery_of(run)
        adc_from = math.ceil(max(0.0, c.epochs - c.adc_aware_epochs) * steps_per_epoch)
    tx, schedule = make_crimp_optimizer(c, steps_per_epoch)
    prune_schedule = zerorize_schedule(c, steps_per_epoch) if use["prune"] else None
    if use["prune"]:
        tx = zerorize_recover(tx, spec=run.xbar, prune=run.prune, schedule=prune_schedule)

    def make_forward(adc: bool, per=None):
        """The stage's forward; `adc`: training steps read the chip through the ADCs of `per`
        (default: `periphery`)."""
        return functools.partial(forward, adc=adc, per=per or periphery)

    def forward(params, model_state, opt_state, images, train, key, step, adc=False,
                per=None):
        if not train:  # evaluation: the zerorized (masked) model, ideal devices
            params = deployed_params(params, opt_state)
        folded, new_ms = fold_for_step(run, models, params["params"], model_state, images,
                                       train, step, steps_per_epoch)
        bn = None
        if train and c.batchnorm == "corrected":
            active = (jnp.asarray(True) if c.bn_freeze_epochs == 0 else
                      step < (c.epochs - c.bn_freeze_epochs) * steps_per_epoch)
            bn = (bn_layers(models.folded, params["params"], model_state["batch_stats"]),
                  active)

        def run_chip(transform, reads=None, chip_key=None, images=images):
            """(logits, {layer: BN stats}) of `images` through one chip."""
            rec = {}
            post = None if bn is None else corrector(bn[0], bn[1], rec)

            def fwd(xbar):
                out = fake_quant_apply(models.folded, folded, params["quant"], images,
                                       run.quant, weight_transform=transform, post=post,
                                       crossbar=xbar)
                return out, dict(rec)

            if not train or not adc:
                return fwd(None)
            if per.calibrated and not per.references:
                raise ValueError("crimp.adc_aware_epochs with adc.full_scale_ref='calibrated' "
                                 "needs the calibrated periphery (crimp_task(..., periphery=))")
            if reads is None:  # an ideal chip, programmed where the step's masks keep rows
                reads = ideal_reads(per, plan.wbits, active_masks(
                    masks_of(opt_state), opt_state, prune_schedule))
            return fwd(crossbar_reader(models.folded, plan, per, reads, ste=True,
                                       key=key if chip_key is None else chip_key))

        if train and use["variation"]:
            masks = active_masks(masks_of(opt_state), opt_state, prune_schedule)
            sigma = training_sigma(run, step, steps_per_epoch)

            def one(k, x=images):  # the forward of images x through one chip (key k)
                def reads(wq):  # the same chip, cell by cell (ADC-aware training)
                    return read_chip(wq, k, run.variation, run.xbar, plan.wbits, masks,
                                     knobs={"sigma": sigma})

                return run_chip(lambda wq: perturb(wq, k, run.variation, run.xbar, plan.wbits,
                                                   masks, knobs={"sigma": sigma},
                                                   scale_mode=plan.spec.scale_mode), reads, k,
                                x)

            # chip d reads the whole batch, or its d-th group (crimp.draws_split)
            groups = (images.reshape((draws, -1) + images.shape[1:])
                      if c.draws_split and draws > 1 else None)
            if draws == 1:
                logits, rec = one(key)
            elif impl == "vmap":
                logits, rec = (jax.vmap(one)(draw_keys(key, draws)) if groups is None
                               else jax.vmap(one)(draw_keys(key, draws), groups))
            else:
                keys = draw_keys(key, draws)
                logits, rec = jax.tree.map(lambda *a: jnp.stack(a), *[
                    one(keys[d], images if groups is None else groups[d])
                    for d in range(draws)])
            if groups is not None:  # (K, B/K, classes) -> (B, classes), batch order
                logits = logits.reshape((-1,) + logits.shape[2:])
        else:
            logits, rec = run_chip(None)
        if bn is not None:
            new_ms = {**model_state, "batch_stats": running_update(
                bn[0], model_state["batch_stats"], rec, c.bn_momentum, bn[1])}
        if train and c.distill_weight > 0:
            teacher = models.bn.apply(model_state["teacher"], images, train=False)
            return {"logits": logits, "teacher": teacher}, new_ms
        return logits, new_ms

    def loss(out, labels):
        if isinstance(out, dict):
            return distillation_loss(out["logits"], out["teacher"], labels, c.distill_weight,
                                     c.distill_temperature, run.train.label_smoothing)
        return cross_entropy(out, labels, run.train.label_smoothing)

    late = (None if adc_from is None or adc_from == 0
            else (adc_from, make_forward(True)))
    setup = (None if late is None or late_periphery is None
             else lambda state: make_forward(True, late_periphery(state)))
    return Task("crimp", make_forward(adc_from == 0), tx, c.epochs, schedule, loss, late,
                setup)


def draws_impl(c) -> str:
    """`crimp.draws_impl` with 'auto' resolved: 'unroll' on CPUs, 'vmap' elsewhere.

    Measured on the 2-core CPU (ResNet-20, batch 100, `experiments.bench --what=crimp`): a step
    with K = 2 vmapped draws took 18.6x the plain step (vmap over different conv weights
    becomes a grouped convolution, slow on XLA:CPU), two unrolled forwards 1.56x, four 3.57x
    (results/resnet20_cpu/bench.jsonl)."""
    if c.draws_impl == "auto":
        return "unroll" if jax.default_backend() == "cpu" else "vmap"
    return c.draws_impl


def init_crimp_state(run, models: StageModels, fp_state: TrainState, calib_images,
                     tx) -> TrainState:
    """The stage's first state from the float stage's final state.

    'folded': params = folded kernels/biases; 'fold_per_step': the BN model's params, with its
    running statistics in model_state. Quantization thresholds are calibrated on the folded
    network (running statistics) with `calib_images`. With distillation, model_state also
    holds the float model (the teacher) as it left the float stage.
    """
    bn_params = fp_state.params["params"]
    stats = fp_state.model_state["batch_stats"]
    folded = fold_params(models.folded, bn_params, stats)
    qstate = init_quant_state(models.folded, folded, calib_images, run.quant)
    if run.crimp.batchnorm == "folded":
        params, model_state = folded, {}
    else:
        params, model_state = bn_params, {"batch_stats": stats}
    if run.crimp.distill_weight > 0:  # a copy: the train step donates the state's buffers
        teacher = jax.tree.map(jnp.copy, {"params": bn_params, "batch_stats": stats})
        model_state = {**model_state, "teacher": teacher}
    return TrainState.create({"params": params, "quant": qstate}, model_state, tx)


def deployed_folded(run, models: StageModels, state: TrainState) -> dict:
    """The folded params a chip is programmed with: masks applied, BN folded with the running
    statistics ('fold_per_step') or already folded ('folded')."""
    latent = deployed_params(state.params, state.opt_state)["params"]
    if run.crimp.batchnorm == "folded":
        return latent
    return fold_params(models.folded, latent, state.model_state["batch_stats"])
