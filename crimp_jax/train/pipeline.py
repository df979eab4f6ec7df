"""`train_and_evaluate(config, workdir)`: the whole run, importable and testable.

Validates everything cheap first (`crimp_jax.config.parse_config`: every block's values and the
rules between blocks; the layer rules on the model's graph; the workdir's identity), so bad
input fails with one line before any data load or compile; then trains the float model, the
quantized stage, and writes `summary.json` (`crimp_jax.summary`) after each analysis step.

The network is the registered `model.name` built for the data (`crimp_jax.models`), or any
`crimp_jax.graph.Network` / flax module a caller passes (`network=`), with the config's data or
the caller's arrays (`data=`, `crimp_jax.data.splits_from_arrays`) and, optionally, the
caller's own float variables instead of the float stage (`variables=`): the library API
(`crimp_jax.api`) is this function.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.config import RunSpec, parse_config
from crimp_jax.data import Splits, calibration_sample, known, load_splits
from crimp_jax.graph import Network, fold_params
from crimp_jax.models import build_network
from crimp_jax.summary import write_summary
from crimp_jax.train.checkpoint import check_run_identity
from crimp_jax.train.loop import DeviceData, Task, fit
from crimp_jax.train.metrics import MetricWriter
from crimp_jax.train.optim import make_optimizer
from crimp_jax.train.state import TrainState
from crimp_jax.utils.blocks import ConfigError
from crimp_jax.utils.paths import flatten, unflatten

log = logging.getLogger(__name__)


def device_description() -> dict:
    d = jax.devices()[0]
    return {"platform": d.platform, "kind": d.device_kind, "count": jax.device_count(),
            "jax": jax.__version__}


def validate_config(config, network=None) -> RunSpec:
    """Every check that needs no data and no compile; returns the parsed run. Layer rules are
    checked on `network`'s graph (a `Network`), else on the registered model's for the
    dataset's known image shape; for a bare flax module or a dataset the package does not know,
    they are checked once the data gives the image shape (still before any compile)."""
    run = parse_config(config)
    check_batch_size(run, run.data.train_size())
    if network is not None and not isinstance(network, Network):
        return run
    if network is None:
        entry = known(run.data.dataset)
        if entry is not None:
            network = build_network(run.model.name, entry.image_shape,
                                    (128,) * entry.image_shape[-1],
                                    (64.0,) * entry.image_shape[-1],
                                    num_classes=entry.num_classes)
    if network is not None and run.uses["quant"]:
        validate_layer_rules(run, network)
    return run


def check_batch_size(run: RunSpec, train_images: int | None) -> None:
    if train_images is not None and run.train.batch_size > train_images:
        raise ConfigError(f"train.batch_size={run.train.batch_size}: expected <= the "
                          f"{train_images} training images (data.train_per_class="
                          f"{run.data.train_per_class})")


def engine_asked(run: RunSpec) -> bool:
    """Whether the deployment is converted to the integer artifact and its engine checked (after
    training, and in a re-read): `evaluate.engine` with power-of-two scales, the only scales
    the integer engine computes with."""
    return run.evaluate.engine and run.quant.scale_mode == "po2"


def validate_layer_rules(run: RunSpec, network: Network) -> None:
    """Regex layer rules (quantization bits, pruned layers) checked on the network's graph
    (read abstractly, no compile) before the float stage trains, so a typo costs no time."""
    from crimp_jax.prune import select_prunable
    from crimp_jax.quant import make_plan

    make_plan(network.graph, run.quant)
    obstacles = network.graph.integer_obstacles()
    if engine_asked(run) and obstacles:
        raise ConfigError(f"evaluate.engine=True: the integer engine cannot run this network "
                          f"on {network.image_shape} images ({'; '.join(obstacles)}, so the mean "
                          f"is not a shift); set evaluate.engine=False or use an input size whose "
                          f"pooled sizes are powers of two")
    if run.uses["prune"]:
        shapes = flatten(network.abstract_variables()["params"])
        kernels = {k: shapes[k] for k in network.graph.kernels}
        if not select_prunable({"params": unflatten(kernels)}, run.prune):
            names = sorted(kernels)
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise ConfigError(
                f"prune.include={run.prune.include!r}, prune.exclude={run.prune.exclude!r}: "
                f"the rules select none of the network's {len(names)} kernels ({shown}), but "
                f"method={run.method!r} prunes; loosen the rules or use a method that does not "
                f"prune ('q', 'qv')")


def network_name(run: RunSpec, network=None) -> str:
    """The name `make_network` gives the run's network (known before the data is loaded)."""
    if isinstance(network, Network):
        return network.name or run.model.name
    if network is not None:
        return type(network).__name__
    return run.model.name


def make_network(run: RunSpec, info, network=None) -> Network:
    """The run's network: `network` (a Network, or a flax module given the data's input
    statistics) or the registered `model.name` built for the data `info` (`DataInfo`)."""
    if isinstance(network, Network):
        net = network
    elif network is not None:
        net = Network(network, info.image_shape, info.mean_int, info.std,
                      type(network).__name__, run.model.train_flag)
    else:
        net = build_network(run.model.name, info.image_shape, info.mean_int, info.std,
                            num_classes=info.num_classes, dtype=run.model.jnp_dtype)
    if tuple(net.image_shape) != tuple(info.image_shape):
        raise ConfigError(f"the network takes {net.image_shape} images; the data "
                          f"({run.data.dataset}) has {info.image_shape}")
    if net.graph.num_classes != info.num_classes:
        raise ConfigError(f"the network outputs {net.graph.num_classes} logits; the data "
                          f"({run.data.dataset}) has {info.num_classes} classes")
    return net


def fp_task(run: RunSpec, model, steps_per_epoch: int) -> Task:
    """Float training of the BatchNorm model."""
    tx, schedule = make_optimizer(run.train, steps_per_epoch, run.train.epochs)

    def forward(params, model_state, opt_state, images, train, key, step):
        del opt_state, step
        if train:  # key: this step's (Dropout's 'dropout' stream)
            logits, upd = model.apply({**params, **model_state}, images, train=True,
                                      mutable=["batch_stats"], rng=key)
            return logits, upd
        return model.apply({**params, **model_state}, images, train=False), model_state

    return Task("fp", forward, tx, run.train.epochs, schedule)


def checked_splits(data) -> Splits:
    """`data` if it is a `Splits` (what a caller passes as `data=`), else a ConfigError."""
    if not isinstance(data, Splits):
        raise ConfigError(f"data: expected the Splits of crimp_jax.api.splits_from_arrays("
                          f"(x_train, y_train), (x_test, y_test)), got a "
                          f"{type(data).__name__}")
    return data


def init_fp_state(run: RunSpec, network: Network, tx, variables=None):
    """The float stage's first state: `variables` (a caller's trained float model: then the
    float stage only evaluates it) or a fresh init from `train.seed`."""
    if variables is None:
        variables = network.init(jax.random.key(run.train.seed))
    return TrainState.create({"params": variables["params"]},
                             {"batch_stats": variables.get("batch_stats", {})}, tx)


def run_identity(run: RunSpec, model_name: str) -> dict:
    return {"model": model_name, "dataset": run.data.dataset,
            "train_per_class": run.data.train_per_class, "method": run.method}


def utc_now() -> str:
    """The current time, UTC, to the second (ISO 8601): the date results record."""
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
        "date": utc_now(),
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


def _adc_aware_task(run, models, graph, state, steps_per_epoch, calib_images, workdir):
    """The second stage's task with ADC-aware training (`crimp.adc_aware_epochs`), its ADC
    full scales calibrated on `state` (the stage's start) or, with crimp.adc_calibrate_at =
    'phase_start', on the state as the ADC-aware phase begins: kept in
    `workdir`/adc_references.json, read back by a resume past that step."""
    from crimp_jax.evaluate import chips
    from crimp_jax.train import analysis
    from crimp_jax.train.crimp import crimp_task, deployed_folded

    def calibrated(st, masks=None):
        return chips.calibrated_periphery(run, graph, deployed_folded(run, models, st),
                                          st.params["quant"], masks, calib_images)

    c, uncalibrated = run.crimp, chips.periphery_of(run)
    if (c.adc_calibrate_at == "stage_start" or c.adc_aware_epochs >= c.epochs
            or not uncalibrated.calibrated):  # (>= epochs: the phase is the whole stage)
        return crimp_task(run, models, steps_per_epoch, calibrated(state))
    path = Path(workdir) / "adc_references.json"

    def at_phase_start(st):
        if path.exists():  # written at the phase's start; a state before it: a stale file
            step, refs = read_references(path)
            if step <= int(st.step):
                log.info("ADC full scales of ADC-aware training read from %s", path)
                return dataclasses.replace(uncalibrated, references=refs)
        per = calibrated(st, analysis.deployed_masks(st))
        path.write_text(json.dumps({"step": int(st.step), "references": per.references}))
        return per

    return crimp_task(run, models, steps_per_epoch, uncalibrated,
                      late_periphery=at_phase_start)


def read_references(path: Path) -> tuple:
    """(step, references): the calibrated ADC references written to `path`
    (adc_references.json) at train step `step`, as `Periphery.references`: sorted (layer,
    reference) pairs, a per-slice reference a tuple."""
    try:
        saved = json.loads(path.read_text())
        refs = tuple(sorted((str(k), tuple(float(r) for r in v) if isinstance(v, list)
                             else float(v)) for k, v in saved["references"]))
        return int(saved["step"]), refs
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a readable ADC-reference file ({e}); delete it to "
                         "recalibrate at the ADC-aware phase's start (resume from a "
                         "checkpoint before that step)") from e


def _selection(run: RunSpec, models, graph, val):
    """The stage's model selection (`crimp.select_chips`): candidates and their scorer."""
    from crimp_jax.evaluate import chips
    from crimp_jax.train import analysis
    from crimp_jax.train.crimp import deployed_folded
    from crimp_jax.train.loop import Selection

    c = run.crimp
    scorer = chips.selection_scorer(run, graph, val)

    def score(state):
        return scorer(deployed_folded(run, models, state), state.params["quant"],
                      analysis.deployed_masks(state))

    what = {"chips": c.select_chips, "sigma": c.select_sigma,
            "compensation": c.select_compensation, "val_images": len(val.labels)}
    return Selection(c.selection_epochs(run.uses["prune"], run.uses["variation"]), score, what)


def train_and_evaluate(config, workdir, stop_after_epoch: int | None = None, *,
                       network=None, data=None, variables=None) -> dict:
    """Runs the configured experiment in `workdir` (resuming if possible); returns the summary.

    Stages: 'fp' (float training with BatchNorm), then for every method but 'fp' the 'crimp'
    stage (see `crimp_jax.train.crimp`), then integer deployment, Monte Carlo robustness, the
    pruning report and the cost model. `stop_after_epoch` (counted over both stages) ends the
    call early, as a preemption would.

    network: a `crimp_jax.graph.Network` or a flax module (default: the registered
      `model.name`); data: `crimp_jax.data.Splits` (default: loaded from the `data` block);
      variables: the network's trained float variables ({'params', 'batch_stats'}): the float
      stage is then skipped (set `train.epochs=0`) and they are evaluated and used.
    """
    from crimp_jax.evaluate import chips, evaluators
    from crimp_jax.train import analysis
    from crimp_jax.train.crimp import (
        StageModels,
        crimp_task,
        deployed_folded,
        init_crimp_state,
    )

    t_start = time.perf_counter()
    workdir = Path(workdir)
    if variables is not None and int(config.train.epochs) != 0:
        raise ConfigError(f"train.epochs={config.train.epochs}: expected 0 when the float "
                          "variables are given (the float stage is then skipped)")
    run = validate_config(config, network)
    model_name = network_name(run, network)
    identity = run_identity(run, model_name)
    check_run_identity(workdir, identity, write=False)  # a wrong workdir: before the data load
    data = load_splits(run.data) if data is None else checked_splits(data)
    train_np, test_np, val_np, info = data
    check_batch_size(run, len(train_np.labels))
    net = make_network(run, info, network)
    net.check_graph()  # the graph computes the module's function, or nothing runs
    if variables is not None:
        net.check_variables(variables)
    if run.uses["quant"]:
        validate_layer_rules(run, net)
    check_run_identity(workdir, identity)  # written once the network is known to be valid
    graph = net.graph
    train, test = DeviceData.put(train_np), DeviceData.put(test_np)
    steps_per_epoch = len(train) // run.train.batch_size
    writer = MetricWriter(workdir)
    seed_key = jax.random.key(run.train.seed)

    # --- Stage 1: float training (BatchNorm model) -----------------------------------------
    task = fp_task(run, net, steps_per_epoch)
    state = init_fp_state(run, net, task.tx, variables)
    state, fp_info = fit(task, state, train, test, run.train, workdir, writer,
                         jax.random.fold_in(seed_key, 0), stop_after_epoch)
    if fp_info.get("interrupted"):
        writer.close()
        return {"interrupted": True, "stage": "fp"}
    fp_acc = fp_info["final"]["accuracy"]
    fp_record = _stage_record(fp_info)
    summary = {
        "model": model_name,
        "dataset": {"name": info.name, "num_classes": info.num_classes,
                    "image_shape": list(info.image_shape), "mean_int": list(info.mean_int),
                    "std": list(info.std)},
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
    bits = analysis.kernel_bits(graph, run.quant)

    if run.uses["quant"]:
        # --- Stage 2: quantized (+ pruned, + variation-aware) training --------------------
        models = StageModels(model_name, net.in_float32(), graph)
        dense_kernels = jax.device_get(flatten(fold_params(
            graph, state.params["params"], state.model_state["batch_stats"])))
        task2 = crimp_task(run, models, steps_per_epoch)
        calib = jnp.asarray(calibration_sample(train_np.images, run.crimp.calib_images,
                                               run.data.seed))
        state2 = init_crimp_state(run, models, state, calib, task2.tx)
        if run.crimp.adc_aware_epochs > 0:  # the ADC full scales of ADC-aware training
            task2 = _adc_aware_task(run, models, graph, state2, steps_per_epoch,
                                    train_np.images, workdir)
        rest = None if stop_after_epoch is None else stop_after_epoch - run.train.epochs
        select = None
        if run.crimp.select_chips:
            select = _selection(run, models, graph, val_np)
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
        masks = analysis.deployed_masks(state2)
        if run.uses["prune"]:
            dense = {k: v for k, v in dense_kernels.items() if k in masks}
            summary["prune"] = analysis.prune_report(run, masks, dense, bits, workdir,
                                                     model_name)
        summary["cost"] = analysis.cost_report(run, p, masks, summary["quant"]["scale"], bits)
        save_summary(workdir, summary, config, t_start, final=False)
        per = chips.calibrated_periphery(run, graph, p, qs, masks, train_np.images)
        if engine_asked(run):
            eng = analysis.engine_check(workdir, model_name, graph, p, qs, run.quant, test_np,
                                        per, masks)
            summary["integer_artifact"] = eng.pop("artifact")
            summary["accuracy"].update(eng)
            save_summary(workdir, summary, config, t_start, final=False)
        if run.evaluate.chips > 0:
            summary["montecarlo"] = evaluators.monte_carlo(
                run, graph, p, qs, masks, test_np, workdir, fp_acc,
                cost_at=lambda a, d: analysis.periphery_cost(analysis.cost_report(
                    run, p, masks, summary["quant"]["scale"], bits, adc_bits=a, dac_bits=d)),
                calib_images=train_np.images, deployed=per)
    else:
        writer.close()
        summary["cost"] = analysis.cost_report(run, state.params["params"], None, "float", bits)

    summary["test_accuracy"] = deployed_acc
    save_summary(workdir, summary, config, t_start, final=True)
    return summary
