"""`train_and_evaluate(config, workdir)`: the whole run, importable and testable.

Validates everything cheap first (config values, model name, dataset, workdir identity), so bad
input fails with one line before any compile; then trains the float model and writes
`summary.json`.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax import data as data_lib
from crimp_jax.config import DTYPES
from crimp_jax.models import build_model, check_model_name
from crimp_jax.train.checkpoint import check_run_identity
from crimp_jax.train.loop import DeviceData, Task, fit
from crimp_jax.train.metrics import MetricWriter
from crimp_jax.train.optim import SCHEDULES, make_optimizer
from crimp_jax.train.state import TrainState
from crimp_jax.utils.paths import flatten

log = logging.getLogger(__name__)


def device_description() -> dict:
    d = jax.devices()[0]
    return {"platform": d.platform, "kind": d.device_kind, "count": jax.device_count(),
            "jax": jax.__version__}


def validate_config(config) -> None:
    """Cheap checks with one clear message each (before data loading and compiles)."""
    check_model_name(config.model.name)
    if config.model.dtype not in DTYPES:
        raise ValueError(f"model.dtype={config.model.dtype!r}: expected one of {DTYPES}")
    t = config.train
    if t.schedule not in SCHEDULES:
        raise ValueError(f"train.schedule={t.schedule!r}: expected one of {SCHEDULES}")
    for name in ("epochs", "batch_size", "eval_batch_size", "checkpoint_every", "scan_steps"):
        if getattr(t, name) < 1:
            raise ValueError(f"train.{name}={getattr(t, name)!r}: expected >= 1")
    if not t.lr > 0:
        raise ValueError(f"train.lr={t.lr!r}: expected > 0")
    if not 0 <= t.label_smoothing < 1:
        raise ValueError(f"train.label_smoothing={t.label_smoothing!r}: expected in [0, 1)")


def load_data(config):
    """Train/test splits as host arrays (class-balanced subsets if asked)."""
    d = config.data
    splits = data_lib.load_cifar10(d.data_dir or None, d.source)
    train = data_lib.balanced_subset(splits["train"], d.train_per_class, d.seed)
    test = data_lib.balanced_subset(splits["test"], d.test_per_class, d.seed)
    return train, test


def resolve_milestones(config):
    """'step' schedule milestones < 1 are fractions of train.epochs."""
    t = config.train
    with t.unlocked():
        t.step_milestones = tuple(m * t.epochs if m < 1 else m for m in t.step_milestones)


def fp_task(config, model, steps_per_epoch: int) -> Task:
    """Float training of the BatchNorm model."""
    tx, schedule = make_optimizer(config.train, steps_per_epoch)

    def forward(params, model_state, opt_state, images, train, key):
        del opt_state, key
        if train:
            logits, upd = model.apply({**params, **model_state}, images, train=True,
                                      mutable=["batch_stats"])
            return logits, upd
        return model.apply({**params, **model_state}, images, train=False), model_state

    return Task("fp", forward, tx, config.train.epochs, schedule)


def init_fp_state(config, model, tx):
    variables = model.init(jax.random.key(config.train.seed),
                           jnp.zeros((1, 32, 32, 3), jnp.uint8), train=False)
    return TrainState.create({"params": variables["params"]},
                             {"batch_stats": variables["batch_stats"]}, tx)


def validate_blocks(config) -> dict:
    """Parses every method block (cheap, no compile); returns what the method uses."""
    from crimp_jax.cost import cost_setup
    from crimp_jax.evaluate.montecarlo import resolve_method
    from crimp_jax.prune import prune_config
    from crimp_jax.quant import quant_spec
    from crimp_jax.train.crimp import crimp_epochs, uses, validate_draws
    from crimp_jax.variation import variation_spec
    from crimp_jax.xbar import xbar_spec

    use = uses(config.method)
    xbar_spec(config.xbar)
    quant_spec(config.quant)
    prune_config(config.prune)
    variation_spec(config.variation)
    cost_setup(config.cost)
    resolve_method(config.evaluate.method)
    if use["quant"] and crimp_epochs(config.crimp) < 1:
        raise ValueError(f"method={config.method!r} needs crimp epochs >= 1 "
                         "(crimp.dense_epochs + alternating_epochs + finetune_epochs)")
    if use["prune"] and config.crimp.alternating_epochs < 1:
        raise ValueError("pruning needs crimp.alternating_epochs >= 1 (the last one zerorizes)")
    validate_draws(config.crimp, use)
    if use["variation"] and not config.variation.sigma > 0:
        raise ValueError(f"method={config.method!r} trains with variation: set "
                         f"variation.sigma > 0 (got {config.variation.sigma!r})")
    if use["quant"]:
        validate_layer_rules(config, use)
    for s_ in config.evaluate.sigmas:
        if not float(s_) >= 0:
            raise ValueError(f"evaluate.sigmas has {s_!r}: expected values >= 0")
    bad = set(config.evaluate.compensation) - {"off", "on"}
    if bad or not config.evaluate.compensation:
        raise ValueError(f"evaluate.compensation={tuple(config.evaluate.compensation)!r}: "
                         "expected a non-empty subset of ('off', 'on')")
    if config.evaluate.chips < 0:
        raise ValueError(f"evaluate.chips={config.evaluate.chips!r}: expected >= 0")
    return use


def validate_layer_rules(config, use) -> None:
    """Regex layer rules (quantization bits, pruned layers) and the pruning schedule, checked on
    abstract shapes before the float stage trains, so a typo costs no training time."""
    from crimp_jax.prune import select_prunable
    from crimp_jax.quant import make_plan
    from crimp_jax.train.crimp import zerorize_schedule

    model_f = build_model(config.model.name, folded=True)
    shapes = jax.eval_shape(model_f.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8))
    make_plan(model_f, config.quant)
    if use["prune"]:
        select_prunable({"params": shapes["params"]}, config.prune)
        zerorize_schedule(config.crimp, 1)


def run_identity(config) -> dict:
    return {"model": config.model.name, "train_per_class": config.data.train_per_class,
            "method": config.method}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("experiments/run.py", "experiments\\run.py")):
        argv = ["python", "-m", "experiments.run"] + argv[1:]
    return " ".join(argv)


def write_summary(workdir: Path, summary: dict, config, t_start: float, final: bool) -> None:
    """Writes summary.json (also after each analysis step, marked partial, so a run cut short
    keeps what it measured)."""
    summary.update({
        "partial": not final,
        "wall_s": time.perf_counter() - t_start,
        "device": device_description(),
        "date": _now(),
        "command": command_line(),
        "config": json.loads(config.to_json_best_effort()),
    })
    tmp = workdir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=float))
    tmp.replace(workdir / "summary.json")


def _stage_record(info) -> dict:
    times = info["epoch_times_s"]
    return {"stage": info["stage"], "epochs": info["epochs"],
            "epoch_s_median": float(np.median(times[1:] if len(times) > 1 else times))
            if times else None,
            "test_accuracy": info["final"]["accuracy"] if info.get("final") else None}


def train_and_evaluate(config, workdir, stop_after_epoch: int | None = None) -> dict:
    """Runs the configured experiment in `workdir` (resuming if possible); returns the summary.

    Stages: 'fp' (float training with BatchNorm), then for every method but 'fp' the 'crimp'
    stage on the BN-folded model (see `crimp_jax.train.crimp`), then integer deployment, Monte
    Carlo robustness, the pruning report and the cost model. `stop_after_epoch` (counted over
    both stages) ends the call early, as a preemption would.
    """
    from crimp_jax.models.fold import fold_batchnorm
    from crimp_jax.train import analysis
    from crimp_jax.train.crimp import crimp_task, deployed_params, init_crimp_state, masks_of

    t_start = time.perf_counter()
    workdir = Path(workdir)
    validate_config(config)
    use = validate_blocks(config)
    check_run_identity(workdir, run_identity(config))
    train_np, test_np = load_data(config)
    resolve_milestones(config)
    dtype = jnp.bfloat16 if config.model.dtype == "bfloat16" else jnp.float32
    model = build_model(config.model.name, dtype=dtype)
    train, test = DeviceData.put(train_np), DeviceData.put(test_np)
    steps_per_epoch = len(train) // config.train.batch_size
    writer = MetricWriter(workdir)
    seed_key = jax.random.key(config.train.seed)

    # --- Stage 1: float training (BatchNorm model) -----------------------------------------
    task = fp_task(config, model, steps_per_epoch)
    state = init_fp_state(config, model, task.tx)
    state, fp_info = fit(task, state, train, test, config.train, workdir, writer,
                         jax.random.fold_in(seed_key, 0), stop_after_epoch)
    if fp_info.get("interrupted"):
        writer.close()
        return {"interrupted": True, "stage": "fp"}
    fp_acc = fp_info["final"]["accuracy"]
    fp_record = _stage_record(fp_info)
    summary = {
        "model": config.model.name,
        "num_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params["params"]))),
        "ablation": config.method,
        "epochs": config.train.epochs,
        "train_images": len(train),
        "test_images": len(test),
        "accuracy": {"fp": fp_acc},
        "stages": [fp_record],
        "quant": None, "prune": None, "montecarlo": None,
        "test_accuracy": fp_acc,
        "epoch_s_median": fp_record["epoch_s_median"],
    }
    deployed_acc = fp_acc

    if use["quant"]:
        # --- Stage 2: quantized (+ pruned, + variation-aware) training of the folded model ----
        folded = fold_batchnorm(state.params["params"], state.model_state["batch_stats"],
                                config.model.name)
        dense_kernels = jax.device_get(flatten(folded))  # host copy: training donates buffers
        model_f = build_model(config.model.name, folded=True, dtype=jnp.float32)
        task2 = crimp_task(config, model_f, steps_per_epoch)
        calib = jnp.asarray(train_np.images[: config.crimp.calib_images])
        state2 = init_crimp_state(config, model_f, folded, calib, task2.tx)
        rest = None if stop_after_epoch is None else stop_after_epoch - config.train.epochs
        state2, info2 = fit(task2, state2, train, test, config.train, workdir, writer,
                            jax.random.fold_in(seed_key, 1), rest)
        writer.close()
        if info2.get("interrupted"):
            return {"interrupted": True, "stage": "crimp"}
        summary["stages"].append(_stage_record(info2))
        deployed_acc = info2["final"]["accuracy"]
        summary["accuracy"]["fake_quant"] = deployed_acc
        summary["test_accuracy"] = deployed_acc
        summary["quant"] = analysis.quant_summary(config.quant)
        write_summary(workdir, summary, config, t_start, final=False)

        final = deployed_params(state2.params, state2.opt_state)
        p, qs = final["params"], final["quant"]
        masks = analysis.flat_masks(masks_of(state2.opt_state))
        if use["prune"]:
            dense = {k: v for k, v in dense_kernels.items() if k in masks}
            summary["prune"] = analysis.prune_report(config, masks, dense, workdir,
                                                     config.model.name)
        summary["cost"] = analysis.cost_report(config, p, masks, summary["quant"]["scale"],
                                               analysis.kernel_bits(model_f, config.quant))
        write_summary(workdir, summary, config, t_start, final=False)
        if config.evaluate.engine and summary["quant"]["scale"] == "po2":
            cmp = analysis.integer_deploy(workdir, config.model.name, model_f, p, qs,
                                          config.quant, test_np)
            summary["accuracy"].update(integer_engine=cmp["engine_accuracy"],
                                       engine_agreement=cmp["agreement"],
                                       engine_exact_logits=cmp["exact_logits"],
                                       max_logit_diff=cmp["max_abs_logit_diff"])
            summary["integer_artifact"] = cmp["artifact"]
            write_summary(workdir, summary, config, t_start, final=False)
        if config.evaluate.chips > 0:
            summary["montecarlo"] = analysis.monte_carlo(
                config, model_f, p, qs, masks, test_np, use["variation"], workdir, fp_acc)
    else:
        writer.close()
        summary["cost"] = analysis.cost_report(config, state.params["params"], None, "float")

    summary["test_accuracy"] = deployed_acc
    write_summary(workdir, summary, config, t_start, final=True)
    return summary
