"""Throughput benchmark: python -m experiments.bench --config=experiments/configs/<name>.py

Prints one JSON line per measurement on the current device: train images/s and inference
images/s per model and batch size (synthetic uint8 data resident on the device; the jitted
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


def main(argv):
    del argv
    from crimp_jax.train.pipeline import device_description

    config = FLAGS.config
    models = FLAGS.models or [config.model.name]
    batches = [int(b) for b in FLAGS.batches] or [config.train.batch_size]
    dev = device_description()
    for model_name in models:
        for batch in batches:
            row = bench_plain(config, model_name, batch, FLAGS.steps)
            row.update(device=dev["kind"], platform=dev["platform"])
            line = json.dumps(row)
            print(line)
            if FLAGS.out:
                with open(FLAGS.out, "a") as f:
                    f.write(line + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
