"""The CRIMP stage: one training process composing every parameter transform in the loss.

    latent folded params --(zerorize-recover masks, in the optimizer)--> pruned latent
      --(power-of-two fake quantization, STE)--> {path: (q, e)}
      --(fresh crossbar variation per step + self-compensation, `variation.perturb`)--> kernels
      --> forward of the BN-folded model with fake-quantized activations --> loss

Ablations (`config.method`): 'q' quantization; 'qp' + pruning; 'qv' + variation-aware
training; 'crimp' all three. The model file is the same for all of them.

Phases, in epochs of the `crimp` block: `dense_epochs` of dense QAT warm-up, then
`alternating_epochs` of zerorize/recover (the last one zerorizes), then `finetune_epochs` with the
masks frozen. Without pruning the phases are simply QAT epochs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from crimp_jax.prune import ZerorizeSchedule, apply_masks, zerorize_recover
from crimp_jax.quant import fake_quant_apply, init_quant_state
from crimp_jax.train.loop import Task
from crimp_jax.train.optim import decay_mask, make_optimizer, make_schedule
from crimp_jax.train.state import TrainState
from crimp_jax.variation import draw_keys, perturb, variation_spec
from crimp_jax.xbar import xbar_spec

METHODS = ("fp", "q", "qp", "qv", "crimp")


def uses(method: str) -> dict:
    """Which transforms a method composes."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    return {"quant": method != "fp", "prune": method in ("qp", "crimp"),
            "variation": method in ("qv", "crimp")}


def default_crimp_config() -> ml_collections.ConfigDict:
    """The `crimp` block: schedule and optimizer of the second (quantized) stage."""
    return ml_collections.ConfigDict(dict(
        dense_epochs=1,         # dense QAT warm-up
        alternating_epochs=5,   # zerorize / recover epochs (odd: starts and ends zerorizing)
        finetune_epochs=0,      # fixed-mask fine-tune at the end
        ramp_epochs=0,          # >0: cubic sparsity ramp over this many alternating epochs
        optimizer="lars",       # weights: 'lars' (SGD momentum + per-layer trust ratio), 'sgd', 'adam'
        lr=0.001,               # LARS: each step changes a layer by about lr of its norm
        threshold_lr=0.0,       # log2 thresholds (Adam); 0 keeps the calibrated thresholds
        schedule="cosine",
        warmup_epochs=0.0,
        step_milestones=(0.5, 0.75),
        step_gamma=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        calib_images=500,       # training images used to initialise the quantization thresholds
        variation_draws=1,      # K chips drawn per step, loss averaged over them
        draws_method="auto",    # K draws: 'vmap', 'unroll' (K forwards in one step), 'auto'
    ))


def crimp_epochs(ccfg) -> int:
    return ccfg.dense_epochs + ccfg.alternating_epochs + ccfg.finetune_epochs


def optimizer_block(ccfg) -> ml_collections.ConfigDict:
    """The subset of the `crimp` block that `make_optimizer` reads (same keys as `train`)."""
    return ml_collections.ConfigDict({k: ccfg[k] for k in (
        "lr", "schedule", "warmup_epochs", "step_milestones", "step_gamma", "momentum",
        "nesterov", "weight_decay")} | {"epochs": crimp_epochs(ccfg)})


def make_crimp_optimizer(ccfg, steps_per_epoch: int):
    """SGD (+ schedule, weight decay on kernels) for the weights; Adam or nothing for the
    quantization thresholds. A rounded log2 threshold that crosses an integer doubles or halves
    a scale, so SGD at the weights' rate makes the loss jump (measured: loss 1.5 -> 6-9 on
    ResNet-20 at lr 1e-2 and still 1.5 -> 3.9 at 1e-4); a separate small-step Adam does not."""
    if ccfg.optimizer == "sgd":
        tx_w, schedule = make_optimizer(optimizer_block(ccfg), steps_per_epoch)
    elif ccfg.optimizer in ("adam", "lars"):
        schedule = make_schedule(optimizer_block(ccfg), steps_per_epoch)
        scale = (optax.scale_by_adam() if ccfg.optimizer == "adam" else
                 optax.chain(optax.trace(ccfg.momentum, ccfg.nesterov),
                             optax.scale_by_trust_ratio()))
        tx_w = optax.chain(optax.add_decayed_weights(ccfg.weight_decay, mask=decay_mask), scale,
                           optax.scale_by_learning_rate(schedule))
    else:
        raise ValueError(f"crimp.optimizer={ccfg.optimizer!r}: expected 'sgd', 'adam' or 'lars'")
    tx_t = optax.adam(ccfg.threshold_lr) if ccfg.threshold_lr > 0 else optax.set_to_zero()

    def labels(params):
        return {k: jax.tree.map(lambda _, k=k: "t" if k == "quant" else "w", v)
                for k, v in params.items()}

    return optax.multi_transform({"w": tx_w, "t": tx_t}, labels), schedule


def zerorize_schedule(ccfg, steps_per_epoch: int) -> ZerorizeSchedule:
    return ZerorizeSchedule(
        warmup_steps=ccfg.dense_epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
        alternating_epochs=ccfg.alternating_epochs,
        ramp_steps=ccfg.ramp_epochs * steps_per_epoch,
        finetune_steps=ccfg.finetune_epochs * steps_per_epoch)


def masks_of(opt_state):
    """The pruning masks held by the optimizer state (None without pruning)."""
    return getattr(opt_state, "masks", None)


def deployed_params(params, opt_state):
    """Trainable tree with the pruning masks applied (what a chip is programmed with)."""
    masks = masks_of(opt_state)
    return params if masks is None else apply_masks(params, masks)


DRAWS_METHODS = ("auto", "vmap", "unroll")


def validate_draws(ccfg, use: dict) -> tuple[int, str]:
    """(K, method) from `crimp.variation_draws` (an int >= 1; > 1 only where the method trains
    with variation) and `crimp.draws_method`; 'auto' is 'unroll' on CPUs, 'vmap' elsewhere.

    Measured on the 2-core CPU (ResNet-20, batch 100, `experiments.bench --what=crimp`): a step
    with K = 2 vmapped draws took 18.6x the plain step (vmap over different conv weights
    becomes a grouped convolution, slow on XLA:CPU), two unrolled forwards 1.56x, four 3.57x
    (results/resnet20_cpu/bench.jsonl)."""
    k, method = ccfg.variation_draws, ccfg.draws_method
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"crimp.variation_draws={k!r}: expected an int >= 1")
    if k > 1 and not use["variation"]:
        raise ValueError(f"crimp.variation_draws={k}: only methods that train with variation "
                         "('qv', 'crimp') draw chips; use 1")
    if method not in DRAWS_METHODS:
        raise ValueError(f"crimp.draws_method={method!r}: expected one of {DRAWS_METHODS}")
    if method == "auto":
        method = "unroll" if jax.default_backend() == "cpu" else "vmap"
    return k, method


def crimp_task(config, folded_model, steps_per_epoch: int) -> Task:
    """The quantized stage of `config.method` as a `Task` for `train.loop.fit`.

    With `crimp.variation_draws` K > 1 a training forward draws K chips (keys fold_in(key, d),
    d < K), runs the batch through each (`vmap` over the draws, or K unrolled forwards:
    `crimp.draws_method`) and returns logits (K, batch, classes): the loop's loss is then the
    mean over draws of each draw's loss. K = 1 uses `key` itself.
    """
    use = uses(config.method)
    ccfg = config.crimp
    draws, draws_method = validate_draws(ccfg, use)
    qcfg = config.quant
    spec = xbar_spec(config.xbar)
    vspec = variation_spec(config.variation)
    tx, schedule = make_crimp_optimizer(ccfg, steps_per_epoch)
    if use["prune"]:
        tx = zerorize_recover(tx, spec=spec, prune=config.prune,
                              schedule=zerorize_schedule(ccfg, steps_per_epoch))

    def forward(params, model_state, opt_state, images, train, key):
        if not train:  # evaluation: the zerorized (masked) model, ideal devices
            params = deployed_params(params, opt_state)
        def run(transform):
            return fake_quant_apply(folded_model, params["params"], params["quant"], images,
                                    qcfg, weight_transform=transform)

        def one(k):  # the forward through one chip drawn with key k
            return run(lambda wq: perturb(wq, k, vspec, spec))

        if not (train and use["variation"]):
            return run(None), model_state
        if draws == 1:
            return one(key), model_state
        keys = draw_keys(key, draws)
        if draws_method == "vmap":
            return jax.vmap(one)(keys), model_state
        return jnp.stack([one(keys[d]) for d in range(draws)]), model_state

    return Task("crimp", forward, tx, crimp_epochs(ccfg), schedule)


def init_crimp_state(config, folded_model, folded_params, calib_images, tx) -> TrainState:
    """Initial state: folded params + quantization thresholds calibrated on `calib_images`."""
    qstate = init_quant_state(folded_model, folded_params, calib_images, config.quant)
    return TrainState.create({"params": folded_params, "quant": qstate}, {}, tx)
