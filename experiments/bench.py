"""Throughput benchmark: python -m experiments.bench --config=experiments/configs/<name>.py

Prints one JSON line per measurement on the current device (--what=plain,crimp,mc,engine):
plain train and inference images/s; the CRIMP train step time over the plain one; Monte Carlo
images x chips/s ('vmap' and 'loop') and its ratio to plain inference of the same network; the
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
flags.DEFINE_list("mc_methods", ["vmap", "loop"], "Monte Carlo implementations to time.")


def _date() -> str:
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def timeit(fn, steps: int) -> float:
    """Median seconds per call of `fn` (which must block until its result is ready)."""
    fn()  # compile + warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_plain(config, model_name: str, batch: int, steps: int) -> dict:
    """Train and inference throughput of the float (BN) model."""
    from crimp_jax.models import build_model
    from crimp_jax.train import pipeline
    from crimp_jax.train.loop import DeviceData, evaluate, make_eval_step, make_train_step

    dtype = jnp.bfloat16 if config.model.dtype == "bfloat16" else jnp.float32
    model = build_model(model_name, dtype=dtype)
    n = batch * 4
    rng = np.random.default_rng(0)
    data = DeviceData(jax.device_put(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
                      jax.device_put(rng.integers(0, 10, (n,), dtype=np.int32)))
    task = pipeline.fp_task(config, model, 4)
    state = pipeline.init_fp_state(config, model, task.tx)
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
    return {"bench": "plain", "model": model_name, "batch": batch, "dtype": config.model.dtype,
            "train_images_per_s": batch / train_s, "infer_images_per_s": batch / infer_s}


def _random_folded(config, model_name: str, n: int):
    """A folded model with random (init) params, calibrated quantization state, device data."""
    from crimp_jax.models.fold import init_folded
    from crimp_jax.quant import init_quant_state
    from crimp_jax.train.loop import DeviceData

    rng = np.random.default_rng(0)
    data = DeviceData(jax.device_put(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
                      jax.device_put(rng.integers(0, 10, (n,), dtype=np.int32)))
    model_f, folded = init_folded(model_name, data.images, jax.random.key(0))
    qstate = init_quant_state(model_f, folded, data.images[: min(n, 256)], config.quant)
    return model_f, folded, qstate, data


def bench_crimp(config, model_name: str, batch: int, steps: int) -> dict:
    """CRIMP train step (quant + zerorize-recover + fresh variation + compensation) over the
    plain float train step: same model, same batch, same device, same run."""
    from crimp_jax.models.fold import stem_name
    from crimp_jax.train.crimp import crimp_task, init_crimp_state, uses, validate_draws
    from crimp_jax.train.loop import make_train_step

    plain = bench_plain(config, model_name, batch, steps)
    cfg = config.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.method = "crimp"
        cfg.model.name = model_name
        if not cfg.variation.sigma > 0:
            cfg.variation.sigma = 0.3
        cfg.crimp.dense_epochs, cfg.crimp.alternating_epochs, cfg.crimp.ramp_epochs = 0, 1, 0
        cfg.prune.exclude = (f"{stem_name(model_name)}/", "fc/")
    model_f, folded, qstate, data = _random_folded(cfg, model_name, batch * 4)
    task = crimp_task(cfg, model_f, 4)
    state = init_crimp_state(cfg, model_f, folded, data.images[:256], task.tx)
    step = make_train_step(task, batch, 0.0, True, 1)
    perm, key, holder = jnp.arange(batch * 4), jax.random.key(0), {"state": state}

    def once():
        holder["state"], m = step(holder["state"], data.images, data.labels, perm, jnp.int32(0),
                                  key)
        m.block_until_ready()

    crimp_s = timeit(once, steps)
    plain_s = batch / plain["train_images_per_s"]
    return {"bench": "crimp_step", "model": model_name, "batch": batch,
            "variation_draws": cfg.crimp.variation_draws,
            "draws_method": validate_draws(cfg.crimp, uses("crimp"))[1],
            "plain_step_s": plain_s, "crimp_step_s": crimp_s, "crimp_over_plain": crimp_s / plain_s}


def bench_mc(config, model_name: str, batch: int, chips: int, n_images: int = 2000,
             methods=("vmap", "loop")) -> dict:
    """Monte Carlo images x chips/s (`methods`) against plain inference of the same
    (fake-quantized) network, `n_images` per chip, batches of `batch`."""
    from crimp_jax.evaluate import benchmark_methods
    from crimp_jax.quant import quantize_weights_int
    from crimp_jax.train.analysis import chip_and_apply, reads_per_batch
    from crimp_jax.xbar import xbar_spec

    model_f, folded, qstate, data = _random_folded(config, model_name, n_images)
    vcfg = config.variation.to_dict() | {"sigma": 0.3}
    chip, apply = chip_and_apply(model_f, config.quant, vcfg, xbar_spec(config.xbar))
    qe = quantize_weights_int(model_f, folded, qstate, config.quant)
    row = benchmark_methods(apply, {"p": folded, "qs": qstate, "k": {
        p: q * 2.0 ** e for p, (q, e) in qe.items()}}, chip, data.images, data.labels,
        chip_args=(folded, qstate, qe, None, jnp.float32(0.3)), n_chips=chips,
        chip_chunk=min(4, chips), batch_size=batch, methods=tuple(methods),
        per_batch=reads_per_batch(vcfg))
    row.update(bench="montecarlo", model=model_name)
    return row


def bench_engine(config, model_name: str, batch: int) -> dict:
    """Integer engine images/s next to the fake-quantized model's."""
    from crimp_jax.integer import convert, engine_throughput

    model_f, folded, qstate, data = _random_folded(config, model_name, batch)
    artifact = convert(model_f, folded, qstate, config.quant, model_name=model_name)
    row = engine_throughput(artifact, model_f, folded, qstate, config.quant, data.images)
    row.update(bench="engine", model=model_name)
    return row


def main(argv):
    del argv
    from crimp_jax.train.pipeline import device_description

    config = FLAGS.config
    models = FLAGS.models or [config.model.name]
    batches = [int(b) for b in FLAGS.batches] or [config.train.batch_size]
    dev = device_description()
    known = {"plain", "crimp", "mc", "engine"}
    if not FLAGS.what or set(FLAGS.what) - known:
        raise app.UsageError(f"--what={FLAGS.what}: expected a subset of {sorted(known)}")
    if not FLAGS.mc_methods or set(FLAGS.mc_methods) - {"vmap", "loop"}:
        raise app.UsageError(f"--mc_methods={FLAGS.mc_methods}: expected a subset of "
                             "['loop', 'vmap']")
    if FLAGS.mc_images < 1 or FLAGS.chips < 1:
        raise app.UsageError(f"--mc_images={FLAGS.mc_images}, --chips={FLAGS.chips}: expected "
                             "positive ints")
    benches = {"plain": lambda m, b: bench_plain(config, m, b, FLAGS.steps),
               "crimp": lambda m, b: bench_crimp(config, m, b, FLAGS.steps),
               "mc": lambda m, b: bench_mc(config, m, b, FLAGS.chips, FLAGS.mc_images,
                                           FLAGS.mc_methods),
               "engine": lambda m, b: bench_engine(config, m, b)}
    for model_name in models:
        for batch in batches:
            for what in FLAGS.what:  # each line is printed (and saved) as soon as it is measured
                row = benches[what](model_name, batch)
                row.update(device=dev["kind"], platform=dev["platform"], date=_date(),
                           command="python -m experiments.bench " + " ".join(sys.argv[1:]))
                line = json.dumps(row)
                print(line)
                if FLAGS.out:
                    with open(FLAGS.out, "a") as f:
                        f.write(line + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
