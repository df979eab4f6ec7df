"""Throughput benchmark: python -m experiments.bench --config=experiments/configs/<name>.py

Prints one JSON line per measurement on the current device (--what=plain,crimp,mc,engine):
plain train and inference images/s; the CRIMP train step time over the plain one; Monte Carlo
images x chips/s ('vmap' and 'loop') and its ratio to plain inference of the same network
(with adc.bits > 0 through the crossbar-faithful datapath, with its FLOP multiple); the
integer engine's images/s next to the fake-quant model's; per model and batch size (synthetic uint8 data resident on the device; the jitted
steps are the ones training uses). Timings exclude compilation; absolute numbers mean
something only on an accelerator, ratios measured in one run mean something everywhere.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
flags.DEFINE_list("models", [], "Models to benchmark (default: the config's model).")
flags.DEFINE_list("batches", [], "Batch sizes (default: the config's train.batch_size).")
flags.DEFINE_integer("steps", 10, "Timed steps per measurement (after one warm-up call).")
flags.DEFINE_string("out", "", "Also append the JSON lines to this file.")
flags.DEFINE_list("what", ["plain"], "Measurements: plain, crimp, mc, engine.")
flags.DEFINE_integer("chips", 8, "Chips for the Monte Carlo benchmark.")
flags.DEFINE_integer("mc_images", 2000, "Test images each Monte Carlo chip evaluates (a real "
                     "sweep runs the whole test set, 10,000; programming a chip is paid once "
                     "per chip, so few images understate the throughput).")
flags.DEFINE_list("mc_impls", ["vmap", "loop"], "Monte Carlo implementations to time.")


def timeit(fn, steps: int) -> float:
    """Median seconds per call of `fn` (which must block until its result is ready)."""
    fn()  # compile + warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def first_and_last(net) -> tuple:
    """prune.exclude rules keeping the network's first and last crossbar layers dense."""
    names = [op["name"] for op in net.graph.layers]
    return (f"params/{names[0]}/", f"params/{names[-1]}/")


def bench_plain(run, model_name: str, batch: int, steps: int) -> dict:
    """Train and inference throughput of the float (BN) model."""
    from crimp_jax.models import build_network
    from crimp_jax.train import pipeline
    from crimp_jax.train.loop import (
        DeviceData,
        evaluate,
        make_eval_step,
        make_train_step,
    )

    model = build_network(model_name, dtype=run.model.jnp_dtype)
    n = batch * 4
    rng = np.random.default_rng(0)
    data = DeviceData(jax.device_put(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
                      jax.device_put(rng.integers(0, 10, (n,), dtype=np.int32)))
    task = pipeline.fp_task(run, model, 4)
    state = pipeline.init_fp_state(run, model, task.tx)
    step = make_train_step(task, batch, 0.0, True, 1)
    perm = jnp.arange(n)
    key = jax.random.key(0)
    holder = {"state": state}

    def train_once():
        holder["state"], m = step(holder["state"], data.images, data.labels, perm, jnp.int32(0),
                                  key)
        m.block_until_ready()

    train_s = timeit(train_once, steps)
    eval_step = make_eval_step(task)

    def infer_once():
        evaluate(eval_step, holder["state"], data, batch)

    infer_s = timeit(infer_once, max(2, steps // 4)) / 4
    return {"bench": "plain", "model": model_name, "batch": batch, "dtype": run.model.dtype,
            "train_images_per_s": batch / train_s, "infer_images_per_s": batch / infer_s}


def _random_stage(run, model_name: str, n: int):
    """(StageModels, float-stage state of a freshly initialised BN model, device data)."""
    from crimp_jax.models import build_network
    from crimp_jax.train import pipeline
    from crimp_jax.train.crimp import StageModels
    from crimp_jax.train.loop import DeviceData

    rng = np.random.default_rng(0)
    data = DeviceData(jax.device_put(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
                      jax.device_put(rng.integers(0, 10, (n,), dtype=np.int32)))
    net = build_network(model_name)
    models = StageModels(model_name, net, net.graph)
    fp_state = pipeline.init_fp_state(run, models.bn, optax.identity())
    return models, fp_state, data


def _random_folded(run, model_name: str, n: int):
    """A folded model with random (init) params, calibrated quantization state, device data."""
    from crimp_jax.graph import fold_params
    from crimp_jax.quant import init_quant_state

    models, fp_state, data = _random_stage(run, model_name, n)
    folded = fold_params(models.folded, fp_state.params["params"],
                         fp_state.model_state["batch_stats"])
    qstate = init_quant_state(models.folded, folded, data.images[: min(n, 256)], run.quant)
    return models.folded, folded, qstate, data


def bench_crimp(run, model_name: str, batch: int, steps: int) -> dict:
    """CRIMP train step (the config's BatchNorm mode, quantization, pruning, fresh variation +
    compensation per step, K draws; with crimp.adc_aware_epochs > 0 the ADC-aware step) over
    the plain float train step: same model, same batch, same device, same run."""
    import dataclasses

    from crimp_jax.models import build_network
    from crimp_jax.train.crimp import crimp_task, draws_impl, init_crimp_state
    from crimp_jax.train.loop import make_train_step

    plain = bench_plain(run, model_name, batch, steps)
    run = dataclasses.replace(
        run, method="crimp",
        variation=dataclasses.replace(run.variation, sigma=run.variation.sigma or 0.3),
        crimp=dataclasses.replace(run.crimp, dense_epochs=0, prune_epochs=1, ramp_epochs=0),
        prune=dataclasses.replace(run.prune, exclude=first_and_last(build_network(model_name))))
    models, fp_state, data = _random_stage(run, model_name, batch * 4)
    task = crimp_task(run, models, 4)
    if task.late is not None:  # crimp.adc_aware_epochs: time the stage's ADC-aware step
        task = task.late_task()
    state = init_crimp_state(run, models, fp_state, data.images[:256], task.tx)
    step = make_train_step(task, batch, 0.0, True, 1)
    perm, key, holder = jnp.arange(batch * 4), jax.random.key(0), {"state": state}

    def once():
        holder["state"], m = step(holder["state"], data.images, data.labels, perm, jnp.int32(0),
                                  key)
        m.block_until_ready()

    crimp_s = timeit(once, steps)
    plain_s = batch / plain["train_images_per_s"]
    return {"bench": "crimp_step", "model": model_name, "batch": batch,
            "batchnorm": run.crimp.batchnorm, "distill": run.crimp.distill_weight > 0,
            "adc_aware": run.crimp.adc_aware_epochs > 0, "adc_bits": run.adc.bits,
            "dac_bits": run.dac.bits,
            "variation_draws": run.crimp.variation_draws,
            "draws_split": run.crimp.draws_split, "draws_impl": draws_impl(run.crimp),
            "plain_step_s": plain_s, "crimp_step_s": crimp_s, "crimp_over_plain": crimp_s / plain_s}


def layer_macs(graph, params, image_shape) -> list:
    """MACs per image of each crossbar layer of `graph` (in graph order), read off the jaxpr of
    its float forward (a conv's output positions x kernel size x channels; a dense's size)."""
    images = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.uint8)
    jaxpr = jax.make_jaxpr(graph.apply)(params, images)
    macs = []
    for eqn in jaxpr.jaxpr.eqns:
        if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
            kernel = eqn.invars[1].aval.shape
            out = eqn.outvars[0].aval.shape
            macs.append(int(np.prod(out)) * int(np.prod(kernel[:-1])))
    if len(macs) != len(graph.layers):
        raise RuntimeError(f"{len(macs)} matmuls in the forward for {len(graph.layers)} layers")
    return macs


def flop_multiple(graph, plan, periphery, params) -> float:
    """MACs of the crossbar-faithful datapath / MACs of plain inference, over the network:
    each layer's input passes x input cycles x slices x reads (`LayerPeriphery.flop_multiple`),
    weighted by the layer's MACs."""
    from crimp_jax.periphery.reader import layer_input, layer_periphery_of
    from crimp_jax.utils.paths import flatten

    macs = layer_macs(graph, params, graph.input_shape)
    flat = flatten(params)
    mult = [layer_periphery_of(op["name"], flat[op["kernel"]].shape, periphery,
                               plan.wbits[op["kernel"]], *layer_input(plan, op["kernel"]))
            .flop_multiple for op in graph.layers]
    return float(np.dot(macs, mult) / np.sum(macs))


def bench_mc(run, model_name: str, batch: int, chips: int, n_images: int = 2000,
             impls=("vmap", "loop")) -> dict:
    """Monte Carlo images x chips/s (`impls`) against plain inference of the same
    (fake-quantized) network, `n_images` per chip, batches of `batch`. With adc.bits > 0 the
    chips are read crossbar-faithfully (DACs, ADCs, shift-and-add): the row also gives the
    datapath's FLOP multiple over plain inference and the fraction of that arithmetic bound
    the implementation reaches (`efficiency` = ratio_to_plain x FLOP multiple; 1 = no overhead
    beyond the arithmetic)."""
    import dataclasses

    from crimp_jax.evaluate import benchmark_mc_impls
    from crimp_jax.evaluate.chips import (
        calibrated_periphery,
        chip_and_apply,
        reads_per_batch,
    )
    from crimp_jax.quant import make_plan, quantize_weights_int

    model_f, folded, qstate, data = _random_folded(run, model_name, n_images)
    vspec = dataclasses.replace(run.variation, sigma=0.3)
    per = calibrated_periphery(run, model_f, folded, qstate, None, data.images)
    chip, apply = chip_and_apply(model_f, run.quant, vspec, run.xbar, per)
    qe = quantize_weights_int(model_f, folded, qstate, run.quant)
    row = benchmark_mc_impls(apply, {"p": folded, "qs": qstate, "k": {
        p: q * 2.0 ** e for p, (q, e) in qe.items()}}, chip, data.images, data.labels,
        chip_args=(folded, qstate, qe, None, jnp.float32(0.3)), n_chips=chips,
        chip_chunk=min(4, chips), batch_size=batch, impls=tuple(impls),
        per_batch=reads_per_batch(vspec))
    row.update(bench="montecarlo", model=model_name, adc=dataclasses.asdict(run.adc),
               dac=dataclasses.asdict(run.dac))
    if not run.adc.ideal:
        fm = flop_multiple(model_f, make_plan(model_f, run.quant), per, folded)
        row["flop_multiple"] = fm
        for impl in impls:
            row[f"{impl}_efficiency"] = row[f"{impl}_ratio_to_plain"] * fm
    return row


def bench_engine(run, model_name: str, batch: int) -> dict:
    """Integer engine images/s next to the fake-quantized model's."""
    from crimp_jax.integer import convert, engine_throughput

    model_f, folded, qstate, data = _random_folded(run, model_name, batch)
    artifact = convert(model_f, folded, qstate, run.quant, model_name=model_name)
    row = engine_throughput(artifact, model_f, folded, qstate, run.quant, data.images)
    row.update(bench="engine", model=model_name)
    return row


def main(argv):
    del argv
    from crimp_jax.config import parse_config
    from crimp_jax.train.pipeline import command_line, device_description, utc_now

    run = parse_config(FLAGS.config)
    models = FLAGS.models or [run.model.name]
    batches = [int(b) for b in FLAGS.batches] or [run.train.batch_size]
    dev = device_description()
    known = {"plain", "crimp", "mc", "engine"}
    if not FLAGS.what or set(FLAGS.what) - known:
        raise app.UsageError(f"--what={FLAGS.what}: expected a subset of {sorted(known)}")
    if not FLAGS.mc_impls or set(FLAGS.mc_impls) - {"vmap", "loop"}:
        raise app.UsageError(f"--mc_impls={FLAGS.mc_impls}: expected a subset of "
                             "['loop', 'vmap']")
    if FLAGS.mc_images < 1 or FLAGS.chips < 1:
        raise app.UsageError(f"--mc_images={FLAGS.mc_images}, --chips={FLAGS.chips}: expected "
                             "positive ints")
    benches = {"plain": lambda m, b: bench_plain(run, m, b, FLAGS.steps),
               "crimp": lambda m, b: bench_crimp(run, m, b, FLAGS.steps),
               "mc": lambda m, b: bench_mc(run, m, b, FLAGS.chips, FLAGS.mc_images,
                                           FLAGS.mc_impls),
               "engine": lambda m, b: bench_engine(run, m, b)}
    for model_name in models:
        for batch in batches:
            for what in FLAGS.what:  # each line is printed (and saved) as soon as it is measured
                row = benches[what](model_name, batch)
                row.update(device=dev["kind"], platform=dev["platform"], date=utc_now(),
                           command=command_line(["python", "-m", "experiments.bench"]
                                                + sys.argv[1:]))
                line = json.dumps(row)
                print(line)
                if FLAGS.out:
                    with open(FLAGS.out, "a") as f:
                        f.write(line + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
