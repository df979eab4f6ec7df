"""`train_and_evaluate(config, workdir)`: the whole run, importable and testable.

Validates everything cheap first (`crimp_jax.config.parse_config`: every block's values and the
rules between blocks; the layer rules on abstract shapes; the workdir's identity), so bad input
fails with one line before any data load or compile; then trains the float model, the quantized
stage, and writes `summary.json` (`crimp_jax.summary`) after each analysis step.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.config import RunSpec, parse_config
from crimp_jax.data import load_splits
from crimp_jax.data.config import TRAIN_PER_CLASS
from crimp_jax.models import build_model
from crimp_jax.summary import write_summary
from crimp_jax.train.checkpoint import check_run_identity
from crimp_jax.train.loop import DeviceData, Task, fit
from crimp_jax.train.metrics import MetricWriter
from crimp_jax.train.optim import make_optimizer
from crimp_jax.train.state import TrainState
from crimp_jax.utils.blocks import ConfigError
from crimp_jax.utils.paths import flatten

log = logging.getLogger(__name__)


def device_description() -> dict:
    d = jax.devices()[0]
    return {"platform": d.platform, "kind": d.device_kind, "count": jax.device_count(),
            "jax": jax.__version__}


def validate_config(config) -> RunSpec:
    """Every check that needs no data and no compile; returns the parsed run."""
    run = parse_config(config)
    train_images = 10 * (run.data.train_per_class or TRAIN_PER_CLASS - run.data.val_per_class)
    if run.train.batch_size > train_images:
        raise ConfigError(f"train.batch_size={run.train.batch_size}: expected <= the "
                          f"{train_images} training images (data.train_per_class="
                          f"{run.data.train_per_class})")
    if run.uses["quant"]:
        validate_layer_rules(run)
    return run


def validate_layer_rules(run: RunSpec) -> None:
    """Regex layer rules (quantization bits, pruned layers) checked on abstract shapes before
    the float stage trains, so a typo costs no training time."""
    from crimp_jax.prune import select_prunable
    from crimp_jax.quant import make_plan

    model_f = build_model(run.model.name, folded=True)
    shapes = jax.eval_shape(model_f.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8))
    make_plan(model_f, run.quant)
    if run.uses["prune"]:
        select_prunable({"params": shapes["params"]}, run.prune)


def fp_task(run: RunSpec, model, steps_per_epoch: int) -> Task:
    """Float training of the BatchNorm model."""
    tx, schedule = make_optimizer(run.train, steps_per_epoch, run.train.epochs)

    def forward(params, model_state, opt_state, images, train, key, step):
        del opt_state, key, step
        if train:
            logits, upd = model.apply({**params, **model_state}, images, train=True,
                                      mutable=["batch_stats"])
            return logits, upd
        return model.apply({**params, **model_state}, images, train=False), model_state

    return Task("fp", forward, tx, run.train.epochs, schedule)


def init_fp_state(run: RunSpec, model, tx):
    variables = model.init(jax.random.key(run.train.seed),
                           jnp.zeros((1, 32, 32, 3), jnp.uint8), train=False)
    return TrainState.create({"params": variables["params"]},
                             {"batch_stats": variables["batch_stats"]}, tx)


def run_identity(run: RunSpec) -> dict:
    return {"model": run.model.name, "train_per_class": run.data.train_per_class,
            "method": run.method}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_line(argv=None) -> str:
    """The command that started this process as a user would type it in the repository: the
    interpreter is `python`, paths inside the current directory are relative to it."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(("experiments/run.py", "experiments\\run.py")):
        argv = ["python", "-m", "experiments.run"] + argv[1:]
    cwd = os.getcwd().rstrip(os.sep) + os.sep
    return " ".join(a.replace(cwd, "") for a in argv)


def save_summary(workdir: Path, summary: dict, config, t_start: float, final: bool) -> None:
    """Writes summary.json (also after each analysis step, marked partial, so a run cut short
    keeps what it measured)."""
    summary.update({
        "partial": not final,
        "wall_s": time.perf_counter() - t_start,
        "device": device_description(),
        "date": _now(),
        "command": command_line(),
        "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
    })
    write_summary(workdir, summary)


def _stage_record(info) -> dict:
    times = info["epoch_times_s"]
    return {"stage": info["stage"], "epochs": info["epochs"],
            "epoch_s_median": float(np.median(times[1:] if len(times) > 1 else times))
            if times else None,
            "test_accuracy": info["final"]["accuracy"] if info.get("final") else None}


def _selection(run: RunSpec, models, model_f, val):
    """The stage's model selection (`crimp.select_chips`): candidates and their scorer."""
    from crimp_jax.train import analysis
    from crimp_jax.train.crimp import deployed_folded, masks_of
    from crimp_jax.train.loop import Selection

    c = run.crimp
    scorer = analysis.selection_scorer(run, model_f, val)

    def score(state):
        masks = analysis.flat_masks(masks_of(state.opt_state))
        return scorer(deployed_folded(run, models, state), state.params["quant"], masks)

    what = {"chips": c.select_chips, "sigma": c.select_sigma,
            "compensation": c.select_compensation, "val_images": len(val.labels)}
    return Selection(c.selection_epochs(run.uses["prune"], run.uses["variation"]), score, what)


def train_and_evaluate(config, workdir, stop_after_epoch: int | None = None) -> dict:
    """Runs the configured experiment in `workdir` (resuming if possible); returns the summary.

    Stages: 'fp' (float training with BatchNorm), then for every method but 'fp' the 'crimp'
    stage (see `crimp_jax.train.crimp`), then integer deployment, Monte Carlo robustness, the
    pruning report and the cost model. `stop_after_epoch` (counted over both stages) ends the
    call early, as a preemption would.
    """
    from crimp_jax.models.fold import fold_batchnorm
    from crimp_jax.train import analysis
    from crimp_jax.train.crimp import (
        StageModels,
        crimp_task,
        deployed_folded,
        init_crimp_state,
        masks_of,
    )

    t_start = time.perf_counter()
    workdir = Path(workdir)
    run = validate_config(config)
    check_run_identity(workdir, run_identity(run))
    train_np, test_np, val_np = load_splits(run.data)
    model = build_model(run.model.name, dtype=run.model.jnp_dtype)
    train, test = DeviceData.put(train_np), DeviceData.put(test_np)
    steps_per_epoch = len(train) // run.train.batch_size
    writer = MetricWriter(workdir)
    seed_key = jax.random.key(run.train.seed)

    # --- Stage 1: float training (BatchNorm model) -----------------------------------------
    task = fp_task(run, model, steps_per_epoch)
    state = init_fp_state(run, model, task.tx)
    state, fp_info = fit(task, state, train, test, run.train, workdir, writer,
                         jax.random.fold_in(seed_key, 0), stop_after_epoch)
    if fp_info.get("interrupted"):
        writer.close()
        return {"interrupted": True, "stage": "fp"}
    fp_acc = fp_info["final"]["accuracy"]
    fp_record = _stage_record(fp_info)
    summary = {
        "model": run.model.name,
        "num_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params["params"]))),
        "method": run.method,
        "epochs": run.train.epochs,
        "train_images": len(train),
        "test_images": len(test),
        "accuracy": {"fp": fp_acc},
        "stages": [fp_record],
        "quant": None, "prune": None, "montecarlo": None, "selection": None,
        "test_accuracy": fp_acc,
        "epoch_s_median": fp_record["epoch_s_median"],
    }
    deployed_acc = fp_acc
    model_f = build_model(run.model.name, folded=True, dtype=jnp.float32)
    bits = analysis.kernel_bits(model_f, run.quant)

    if run.uses["quant"]:
        # --- Stage 2: quantized (+ pruned, + variation-aware) training --------------------
        models = StageModels(run.model.name, build_model(run.model.name, dtype=jnp.float32),
                             model_f)
        dense_kernels = jax.device_get(flatten(fold_batchnorm(
            state.params["params"], state.model_state["batch_stats"], run.model.name)))
        task2 = crimp_task(run, models, steps_per_epoch)
        calib = jnp.asarray(train_np.images[: run.crimp.calib_images])
        state2 = init_crimp_state(run, models, state, calib, task2.tx)
        rest = None if stop_after_epoch is None else stop_after_epoch - run.train.epochs
        select = None
        if run.crimp.select_chips:
            select = _selection(run, models, model_f, val_np)
        state2, info2 = fit(task2, state2, train, test, run.train, workdir, writer,
                            jax.random.fold_in(seed_key, 1), rest, select)
        writer.close()
        if info2.get("interrupted"):
            return {"interrupted": True, "stage": "crimp"}
        summary["stages"].append(_stage_record(info2))
        summary["selection"] = info2.get("selection")
        deployed_acc = info2["final"]["accuracy"]
        summary["accuracy"]["fake_quant"] = deployed_acc
        summary["test_accuracy"] = deployed_acc
        summary["quant"] = analysis.quant_summary(run.quant)
        save_summary(workdir, summary, config, t_start, final=False)

        p, qs = deployed_folded(run, models, state2), state2.params["quant"]
        masks = analysis.flat_masks(masks_of(state2.opt_state))
        if run.uses["prune"]:
            dense = {k: v for k, v in dense_kernels.items() if k in masks}
            summary["prune"] = analysis.prune_report(run, masks, dense, bits, workdir,
                                                     run.model.name)
        summary["cost"] = analysis.cost_report(run, p, masks, summary["quant"]["scale"], bits)
        save_summary(workdir, summary, config, t_start, final=False)
        if run.evaluate.engine and summary["quant"]["scale"] == "po2":
            cmp = analysis.integer_deploy(workdir, run.model.name, model_f, p, qs, run.quant,
                                          test_np)
            summary["accuracy"].update(integer_engine=cmp["engine_accuracy"],
                                       engine_agreement=cmp["agreement"],
                                       engine_exact_logits=cmp["exact_logits"],
                                       max_logit_diff=cmp["max_abs_logit_diff"])
            summary["integer_artifact"] = cmp["artifact"]
            save_summary(workdir, summary, config, t_start, final=False)
        if run.evaluate.chips > 0:
            summary["montecarlo"] = analysis.monte_carlo(run, model_f, p, qs, masks, test_np,
                                                         workdir, fp_acc)
    else:
        writer.close()
        summary["cost"] = analysis.cost_report(run, state.params["params"], None, "float", bits)

    summary["test_accuracy"] = deployed_acc
    save_summary(workdir, summary, config, t_start, final=True)
    return summary
