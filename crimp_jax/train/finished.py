"""A finished run, restored read-only: what re-evaluating it needs without training again.

    done = load_finished(config, "runs/quickstart")   # config: the run's (summary.json's)
    done.params, done.qstate, done.masks              # the deployed folded network
    done.test, done.train                             # its data splits (host arrays)
    reevaluate(config_with_new_chip_settings, "runs/quickstart", out_dir)

The deployed state (the model-selection pick, `checkpoints/crimp_best`, where the run selected
one; else the last of `checkpoints/crimp`) is restored into a template
built from `config` exactly as the run built it (data, network, float state, calibration), so
a config whose training keys differ from the run's is refused by the checkpointer ("does not
match this run's state"). Nothing in the workdir is written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from crimp_jax.config import parse_config


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


def load_finished(config, workdir) -> FinishedRun:
    """The finished run in `workdir`, trained with `config` (see module docstring)."""
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
    train_np, test_np, _, info = load_splits(run.data)
    net = make_network(run, info)
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
                       deployed_folded(run, models, state), state.params["quant"], masks)


def reevaluate(config, workdir, out, record: dict | None = None) -> dict:
    """The finished run in `workdir` evaluated under `config` (the run's own, with other chip
    or evaluation settings) as the run evaluated itself, written with its figures and
    artifact to `out`/evaluation.json together with `record` (the command, ...):

      engine      with `evaluate.engine` and power-of-two scales: the integer artifact of the
                  deployment under these settings (`out`/model_int.npz; with finite ADCs
                  crossbar-faithful, its full scales calibrated again) checked against the
                  fake-quantized model on the whole test set (`analysis.engine_check`'s
                  entries, and test_images), else null
      montecarlo  `evaluate.evaluators.monte_carlo` (chips per sigma, compensation off/on, the
                  sweeps the `evaluate` block asks for)

    Nothing in `workdir` is written. Returns what evaluation.json holds."""
    import json

    from crimp_jax.evaluate import chips, evaluators
    from crimp_jax.summary import read_summary
    from crimp_jax.train import analysis
    from crimp_jax.train.pipeline import device_description, engine_asked, utc_now

    done = load_finished(config, workdir)
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
    mc = evaluators.monte_carlo(run, graph, done.params, done.qstate, done.masks, done.test,
                                out, read_summary(Path(workdir)).fp_accuracy,
                                calib_images=done.train.images, deployed=per)
    result = {"workdir": str(workdir), **(record or {}), "device": device_description(),
              "date": utc_now(), "engine": engine, "montecarlo": mc}
    text = json.dumps(result, indent=1)
    (out / "evaluation.json").write_text(text)
    return json.loads(text)
