"""The base experiment config (ml_collections). Experiment files override a few fields.

Blocks: `model`, `data`, `train` (float stage), `method` (which CRIMP transforms the second
stage composes), `crimp` (second stage schedule), `quant`, `prune`, `variation`, `evaluate`
(Monte Carlo), `cost`, and `xbar` (the one crossbar description shared by pruning, variation
and the cost model). Configs are locked: a misspelt key is an error, both in config
files and in command-line overrides (`--config.train.epochs=3`).
"""

from __future__ import annotations

import ml_collections

from crimp_jax.xbar import default_xbar_config

METHODS = ("fp", "q", "qp", "qv", "crimp")

DTYPES = ("float32", "bfloat16")


def base_config() -> ml_collections.ConfigDict:
    """Every block with its defaults (imports are local: this module is imported by configs)."""
    from crimp_jax.cost import default_cost_config
    from crimp_jax.prune import default_prune_config
    from crimp_jax.quant import default_quant_config
    from crimp_jax.train.analysis import default_evaluate_config
    from crimp_jax.train.crimp import default_crimp_config
    from crimp_jax.variation import default_variation_config

    c = ml_collections.ConfigDict()
    c.model = ml_collections.ConfigDict(dict(
        name="resnet20",     # see crimp_jax.models.MODEL_NAMES
        dtype="float32",     # compute dtype: 'bfloat16' on GPUs/TPUs (emulated, slow, on CPU)
    ))
    c.data = ml_collections.ConfigDict(dict(
        data_dir="",         # folder holding cifar10_jpeg_q75.npz ('' -> $CRIMP_DATA_DIR / tfds)
        source="auto",       # 'auto' | 'npz' | 'tfds'
        train_per_class=0,   # >0: class-balanced training subset (quick runs)
        test_per_class=0,    # >0: class-balanced test subset
        seed=0,
    ))
    c.train = ml_collections.ConfigDict(dict(
        epochs=30,
        batch_size=128,
        eval_batch_size=500,
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        schedule="cosine",   # 'cosine' | 'step' | 'onecycle' | 'constant'
        warmup_epochs=0.0,
        step_milestones=(0.5, 0.75),  # 'step' schedule: epochs (fractions of train.epochs if < 1)
        step_gamma=0.1,
        label_smoothing=0.0,
        augment=True,        # pad-4 random crop + horizontal flip, on device
        eval_every=1,        # epochs between test evaluations (0: only at the end)
        checkpoint_every=1,  # epochs between checkpoints
        scan_steps=1,        # train steps fused into one jitted call (lax.scan); 1 on CPU
        seed=0,
        quiet=False,         # hide the progress bar
    ))
    c.xbar = default_xbar_config()
    c.method = "fp"  # 'fp' | 'q' (quant) | 'qp' (+prune) | 'qv' (+variation-aware) | 'crimp'
    c.crimp = default_crimp_config()
    c.quant = default_quant_config()
    c.prune = default_prune_config()
    c.prune.score_norm = "layer_rms"  # folded layers' weight scales differ: see PruneConfig
    c.variation = default_variation_config()
    c.evaluate = default_evaluate_config()
    c.cost = default_cost_config()
    return c


def lock(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    config.lock()
    return config
