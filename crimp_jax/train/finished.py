"""A finished run, restored read-only: what re-evaluating it needs without training again.

    config = with_changes(recorded_config("runs/quickstart"), {"adc.bits": 5})
    done = load_finished(config, "runs/quickstart")   # network=, data=: see below
    done.params, done.qstate, done.masks              # the deployed folded network
    done.test, done.train                             # its data splits (host arrays)
    reevaluate(config, "runs/quickstart", out_dir)

A run trained on a researcher's own module and arrays (`crimp_jax.api.run(MyNet(), config,
workdir, data=splits)`) is restored with the same module (a fresh instance: the weights come
from the checkpoint) and data: `network=MyNet(), data=splits` (`crimp_jax.api.reevaluate`).
Which network and data the run trained on is checked against its summary.json before any
data is loaded or anything restored: the module's name (`summary.model`), and the data's
name, class count, image shape and channel statistics (`summary.dataset`).

The deployed state (the model-selection pick, `checkpoints/crimp_best`, where the run selected
one; else the last of `checkpoints/crimp`) is restored into a template
built from `config` exactly as the run built it (data, network, float state, calibration), so
a config whose training keys differ from the run's is refused by the checkpointer ("does not
match this run's state"). Nothing in the workdir is written.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from crimp_jax.config import config_from_dict, lock, parse_config
from crimp_jax.summary import Summary, read_summary
from crimp_jax.utils.blocks import ConfigError

# the config blocks a re-evaluation may change: the chip and how it is evaluated; any other
# key would describe another trained network
CHIP_BLOCKS = ("variation", "adc", "dac", "evaluate", "cost")


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    run: Any  # RunSpec
    workdir: Path
    train: Any  # host Split
    test: Any
    models: Any  # StageModels
    state: Any  # the second stage's final TrainState
    params: dict  # deployed folded {layer: {kernel, bias}}
    qstate: dict
    masks: dict | None  # flat {kernel path: 0/1}, None without pruning
    summary: Summary  # the run's summary.json


def recorded_config(workdir):
    """The (locked) config the finished run in `workdir` recorded in its summary.json."""
    return lock(config_from_dict(read_summary(Path(workdir)).data["config"]))


def check_chip_block(block: str, what: str) -> None:
    """Refuses a change (`what`, as the user wrote it) to a block outside `CHIP_BLOCKS`."""
    if block not in CHIP_BLOCKS:
        raise ConfigError(f"{what}: re-evaluation changes chip and evaluation settings only "
                          f"(blocks {', '.join(CHIP_BLOCKS)}); {block!r} would change the "
                          f"trained network: train a new run (python -m experiments.run, or "
                          f"crimp_jax.api.run)")


def with_changes(config, changes: dict):
    """A copy of `config` with `changes` {'block.key': value} applied: chip and evaluation
    settings only (`CHIP_BLOCKS`). An unknown key, a key of another block or a value of the
    wrong type is a ConfigError naming it."""
    config = lock(config_from_dict(config.to_dict()))
    for dotted, value in changes.items():
        block, _, key = str(dotted).partition(".")
        check_chip_block(block, dotted)
        if key not in config[block]:
            raise ConfigError(f"{dotted}: block {block!r} has no key {key!r}; its keys: "
                              f"{', '.join(sorted(config[block]))} (docs/config.md)")
        try:
            config[block][key] = value
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{dotted}={value!r}: {e}") from None
    return config


def default_out(workdir, changes: list) -> Path:
    """Where a re-evaluation writes by default: `workdir`/evaluate/<the changes, 'KEY=VALUE'
    strings joined by commas, or 'as_trained'>."""
    slug = ",".join(changes) or "as_trained"
    return Path(workdir) / "evaluate" / re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", slug)[:150]


def _check_trained_on(workdir, summary: Summary, run, network) -> None:
    """Refuses a network other than the one the run trained (by `summary.model`), before any
    data is loaded; a run on a researcher's own module needs that module."""
    from crimp_jax.train.pipeline import network_name

    trained = summary.model
    if network is None and trained != run.model.name:
        raise ConfigError(
            f"{workdir} was trained on the module {trained!r} given to crimp_jax.api.run, not "
            f"on the registered model.name {run.model.name!r}: re-evaluate it from Python with "
            f"the same module and data, crimp_jax.api.reevaluate({trained}(...), "
            f"{str(workdir)!r}, {{'adc.bits': 5}}, data=splits) (README, 'Bring your own "
            f"model')")
    if network is not None and network_name(run, network) != trained:
        raise ConfigError(f"{workdir} was trained on {trained!r}; the module given is "
                          f"{network_name(run, network)!r}: pass the module the run trained")


def _check_same_data(workdir, summary: Summary, info) -> None:
    """Refuses data whose name, classes, image shape or channel statistics differ from those
    the run trained on (`summary.dataset`): the statistics are folded into the first layer."""
    recorded = summary.get("dataset") or {}
    here = {"name": info.name, "num_classes": info.num_classes,
            "image_shape": list(info.image_shape), "mean_int": list(info.mean_int),
            "std": list(info.std)}
    diff = [f"{k} {recorded[k]} there, {v} here" for k, v in here.items()
            if k in recorded and recorded[k] != v]
    if diff:
        raise ConfigError(f"{workdir} was trained on other data ({'; '.join(diff)}): "
                          f"re-evaluate it with the data it trained on (crimp_jax.api."
                          f"reevaluate(..., data=) as given to crimp_jax.api.run, else the "
                          f"run's data block)")


def load_finished(config, workdir, *, network=None, data=None) -> FinishedRun:
    """The finished run in `workdir`, trained with `config` on `network` (a flax module or
    `Network`; None: the registered `model.name`) and `data` (`Splits`; None: the config's
    data block); see the module docstring."""
    from crimp_jax.data import calibration_sample, load_splits
    from crimp_jax.train import analysis
    from crimp_jax.train.checkpoint import StageCheckpointer
    from crimp_jax.train.crimp import (
        StageModels,
        crimp_task,
        deployed_folded,
        init_crimp_state,
    )
    from crimp_jax.train.pipeline import (
        checked_splits,
        fp_task,
        init_fp_state,
        make_network,
        network_name,
        validate_layer_rules,
    )

    run = parse_config(config)
    if not run.uses["quant"]:
        raise ValueError(f"{workdir}: a method={run.method!r} run has no second stage to "
                         f"re-evaluate")
    summary = read_summary(Path(workdir))
    _check_trained_on(workdir, summary, run, network)
    trained_on = (summary.get("dataset") or {}).get("name", run.data.dataset)
    if data is None and trained_on != run.data.dataset:
        raise ConfigError(f"{workdir} was trained on the data {trained_on!r} given to "
                          f"crimp_jax.api.run, not on its data block ({run.data.dataset!r}): "
                          f"re-evaluate it from Python with the same data, "
                          f"crimp_jax.api.reevaluate(..., data=splits)")
    train_np, test_np, _, info = load_splits(run.data) if data is None else checked_splits(data)
    _check_same_data(workdir, summary, info)
    net = make_network(run, info, network)
    if network is not None:
        net.check_graph()  # as the run did: the graph computes the module's function
    validate_layer_rules(run, net)  # e.g. evaluate.engine=True on a network it cannot run
    models = StageModels(network_name(run, net), net.in_float32(), net.graph)
    spe = len(train_np.labels) // run.train.batch_size
    fp_state = init_fp_state(run, net, fp_task(run, net, spe).tx)
    calib = jnp.asarray(calibration_sample(train_np.images, run.crimp.calib_images,
                                           run.data.seed))
    task = crimp_task(run, models, spe)
    template = init_crimp_state(run, models, fp_state, calib, task.tx)
    # the deployed state: the model-selection pick (crimp.select_chips), else the last one
    stage = "crimp_best" if (Path(workdir) / "checkpoints" / "crimp_best").is_dir() else "crimp"
    ckpt = StageCheckpointer(Path(workdir), stage)
    if ckpt.latest_step() is None:
        raise ValueError(f"{workdir}: no second-stage checkpoint in {workdir}/checkpoints/"
                         f"{stage}; expected the workdir of a finished run")
    state = ckpt.restore(template)
    ckpt.close()
    masks = analysis.deployed_masks(state)
    return FinishedRun(run, Path(workdir), train_np, test_np, models, state,
                       deployed_folded(run, models, state), state.params["quant"], masks,
                       summary)


def reevaluate(config, workdir, out, record: dict | None = None, *, network=None,
               data=None) -> dict:
    """The finished run in `workdir` evaluated under `config` (the run's own, with other chip
    or evaluation settings) as the run evaluated itself, written with its figures and
    artifact to `out`/evaluation.json together with `record` (the command, ...):

      engine      with `evaluate.engine` and power-of-two scales: the integer artifact of the
                  deployment under these settings (`out`/model_int.npz; with finite ADCs
                  crossbar-faithful, its full scales calibrated again) checked against the
                  fake-quantized model on the whole test set (`analysis.engine_check`'s
                  entries, and test_images), else null
      montecarlo  `evaluate.evaluators.monte_carlo` (chips per sigma, compensation off/on, the
                  sweeps the `evaluate` block asks for); null with `evaluate.chips=0`

    `network`, `data`: a run on a researcher's own module and arrays (`load_finished`).
    Nothing in `workdir` is written. Returns what evaluation.json holds."""
    import json

    from crimp_jax.evaluate import chips, evaluators
    from crimp_jax.train import analysis
    from crimp_jax.train.pipeline import device_description, engine_asked, utc_now

    done = load_finished(config, workdir, network=network, data=data)
    run, out = done.run, Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graph = done.models.folded
    per = chips.calibrated_periphery(run, graph, done.params, done.qstate, done.masks,
                                     done.train.images)
    engine = None
    if engine_asked(run):
        engine = analysis.engine_check(out, done.models.name, graph, done.params, done.qstate,
                                       run.quant, done.test, per, done.masks)
        engine["test_images"] = int(len(done.test.labels))
    mc = None  # evaluate.chips=0: the engine alone, as a run with no Monte Carlo
    if run.evaluate.chips > 0:
        mc = evaluators.monte_carlo(run, graph, done.params, done.qstate, done.masks,
                                    done.test, out, done.summary.fp_accuracy,
                                    calib_images=done.train.images, deployed=per)
    result = {"workdir": str(workdir), **(record or {}), "device": device_description(),
              "date": utc_now(), "engine": engine, "montecarlo": mc}
    text = json.dumps(result, indent=1)
    (out / "evaluation.json").write_text(text)
    return json.loads(text)
