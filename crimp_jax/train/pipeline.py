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


def run_identity(config) -> dict:
    return {"model": config.model.name, "train_per_class": config.data.train_per_class}


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


def train_and_evaluate(config, workdir, stop_after_epoch: int | None = None) -> dict:
    """Runs the configured experiment in `workdir` (resuming if possible); returns the summary."""
    t_start = time.perf_counter()
    workdir = Path(workdir)
    validate_config(config)
    check_run_identity(workdir, run_identity(config))
    train_np, test_np = load_data(config)
    resolve_milestones(config)
    dtype = jnp.bfloat16 if config.model.dtype == "bfloat16" else jnp.float32
    model = build_model(config.model.name, dtype=dtype)
    train, test = DeviceData.put(train_np), DeviceData.put(test_np)
    steps_per_epoch = len(train) // config.train.batch_size
    writer = MetricWriter(workdir)
    seed_key = jax.random.key(config.train.seed)

    task = fp_task(config, model, steps_per_epoch)
    state = init_fp_state(config, model, task.tx)
    state, info = fit(task, state, train, test, config.train, workdir, writer,
                      jax.random.fold_in(seed_key, 0), stop_after_epoch)
    writer.close()
    if info.get("interrupted"):
        return {"interrupted": True, "stage": "fp"}

    n_params = int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params["params"])))
    times = info["epoch_times_s"]
    summary = {
        "model": config.model.name,
        "num_params": n_params,
        "epochs": config.train.epochs,
        "train_images": len(train),
        "test_images": len(test),
        "test_accuracy": info["final"]["accuracy"],
        "test_loss": info["final"]["loss"],
        "epoch_s_median": float(np.median(times[1:] if len(times) > 1 else times)) if times else None,
        "wall_s": time.perf_counter() - t_start,
        "device": device_description(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "config": json.loads(config.to_json_best_effort()),
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
