"""The training loop: one jitted train step, data on the device, eval, checkpoints, metrics.

A training *stage* is described by a `Task`: a pure forward function (where every CRIMP
parameter transform is composed), an optax transformation and a number of epochs. `fit` runs
one stage: it resumes from the stage's latest checkpoint, trains epoch by epoch with one jitted
step (traced once; optionally `scan_steps` steps fused per call for accelerators), evaluates
every `eval_every` epochs, checkpoints after each good epoch, writes metrics and stops with a
clear error on a non-finite loss, keeping the last good checkpoint. With a `Selection`, the
candidate epochs' models are scored (e.g. on Monte Carlo chips over a validation split), the
best is checkpointed apart (`checkpoints/<stage>_best`, scores in
`checkpoints/<stage>_selection.json`) and returned instead of the last epoch's.

Random streams are derived, never stored: the batch order of epoch e is
permutation(fold_in(data_key, e)) and the augmentation/variation key of step s is
fold_in(step_key, s), so an interrupted run that resumes is identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from crimp_jax.data import epoch_permutation, random_crop_flip
from crimp_jax.train.checkpoint import StageCheckpointer
from crimp_jax.train.state import TrainState

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/Inf loss."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One training stage.

    forward(params, model_state, opt_state, images, train, key, step) -> (out, new_model_state):
      pure and jittable; `images` are uint8; `train` is a Python bool; `step` the (traced)
      train step. `out` is the logits or a dict with them under 'logits' (and what `loss`
      needs besides, e.g. a teacher's logits). In training the logits may carry leading axes
      (K variation draws: (K, batch, classes)); loss and accuracy average over them.
    loss(out, labels) -> scalar: the training loss (default: cross-entropy, label smoothing
      from the `train` block).
    late: optional (step, forward): from train step `step` of the stage on (counted from 0),
      training runs this forward instead (evaluation keeps `forward`). `fit` compiles it as a
      second train step, so neither step carries the other's graph (a `lax.cond` between
      them would: its gradient zero-fills the other branch's residuals every step).
    late_setup: optional callable(state) -> forward: the late forward built from the
      training state when the late step is first compiled (the state at step `late[0]`, or
      the restored one on a resume past it), in place of `late[1]`.
    """

    name: str
    forward: Callable
    tx: optax.GradientTransformation
    epochs: int
    schedule: Callable | None = None
    loss: Callable | None = None
    late: tuple | None = None
    late_setup: Callable | None = None

    def late_task(self, state=None) -> Task:
        """The task of the steps from `late[0]` on: `late`'s forward (`late_setup(state)`'s
        when set), no further switch."""
        forward = self.late[1] if self.late_setup is None else self.late_setup(state)
        return dataclasses.replace(self, name=f"{self.name} (late)", forward=forward,
                                   late=None, late_setup=None)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Model selection inside a stage.

    epochs: the stage epochs (counted 1.., at their end) whose model is a candidate.
    score(state) -> (mean, std): the candidate's score, higher is better (host floats).
    what: a description for the summary (e.g. {'chips': 4, 'sigma': 0.3, ...}).
    """

    epochs: tuple
    score: Callable
    what: dict


class _SelectionLog:
    """Scores so far and the best candidate, persisted beside the checkpoints so a resumed
    stage continues the same selection (scores of epochs after the resumed one are dropped:
    those epochs are trained, and scored, again, identically)."""

    def __init__(self, workdir: Path, stage: str, resumed_epoch: int):
        self.path = Path(workdir) / "checkpoints" / f"{stage}_selection.json"
        self.ckpt = StageCheckpointer(workdir, f"{stage}_best", max_to_keep=1)
        scores = json.loads(self.path.read_text())["scores"] if self.path.is_file() else []
        self.scores = [s for s in scores if s["epoch"] <= resumed_epoch]

    @property
    def best(self):
        return max(self.scores, key=lambda s: s["mean"], default=None)  # first of ties

    def offer(self, epoch: int, state, mean: float, std: float) -> None:
        best = self.best
        self.scores.append({"epoch": epoch, "step": int(state.step), "mean": mean, "std": std})
        if best is None or mean > best["mean"]:
            for step in self.ckpt.manager.all_steps():  # the folder holds only the best
                self.ckpt.manager.delete(step)
            self.ckpt.save(int(state.step), state)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"scores": self.scores}, indent=1))

    def best_state(self, state_like):
        return self.ckpt.restore(state_like, self.best["step"])


def logits_of(out):
    """The logits of a forward's output (an array, or a dict holding them under 'logits')."""
    return out["logits"] if isinstance(out, dict) else out


@dataclasses.dataclass
class DeviceData:
    """A split resident on the accelerator."""

    images: jax.Array  # (n, 32, 32, 3) uint8
    labels: jax.Array  # (n,) int32

    @classmethod
    def put(cls, split):
        return cls(jax.device_put(np.asarray(split.images)), jax.device_put(np.asarray(split.labels)))

    def __len__(self):
        return int(self.labels.shape[0])


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy with optional label smoothing.

    logits (..., batch, classes) against labels (batch,): leading axes (e.g. K variation
    draws) are averaged over too, so the result is the mean of the per-draw losses.
    """
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean()


def trace_once(what: str):
    """Decorator: the function may be traced once; a retrace (a changed shape, dtype or Python
    value in the signature) raises instead of silently compiling again."""
    def deco(fn):
        count = [0]

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            count[0] += 1
            if count[0] > 1:
                raise RuntimeError(f"{what} traced {count[0]} times: its inputs changed "
                                   "shape/dtype between calls")
            return fn(*args, **kwargs)
        return wrapped
    return deco


def make_train_step(task: Task, batch_size: int, label_smoothing: float, augment: bool,
                    scan_steps: int = 1):
    """Returns a jitted step(state, images, labels, perm, first, key) running `scan_steps` steps.

    Batch j of the epoch is perm[j*B:(j+1)*B]; `first` is the index of the first batch.
    """

    def one_step(state: TrainState, j, images, labels, perm, key):
        idx = jax.lax.dynamic_slice(perm, (j * batch_size,), (batch_size,))
        k_aug, k_fwd = jax.random.split(jax.random.fold_in(key, state.step))
        x = images[idx]
        if augment:
            x = random_crop_flip(x, k_aug)
        y = labels[idx]

        def loss_fn(params):
            out, new_ms = task.forward(params, state.model_state, state.opt_state, x, True,
                                       k_fwd, state.step)
            loss = (task.loss(out, y) if task.loss is not None
                    else cross_entropy(logits_of(out), y, label_smoothing))
            return loss, (logits_of(out), new_ms)

        (loss, (logits, new_ms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = task.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        hit = jnp.argmax(logits, -1) == y  # (batch,) or (draws, batch): average over draws
        correct = jnp.sum(hit) / (hit.size // y.size)
        new = TrainState(state.step + 1, params, new_ms, opt_state)
        return new, jnp.stack([loss, correct.astype(jnp.float32)])

    @trace_once(f"{task.name} train step")
    def steps(state, images, labels, perm, first, key):
        if scan_steps == 1:  # XLA:CPU runs convs inside a scan body ~15x slower: avoid it
            return one_step(state, first, images, labels, perm, key)

        def body(st, j):
            return one_step(st, j, images, labels, perm, key)
        state, out = jax.lax.scan(body, state, first + jnp.arange(scan_steps))
        return state, out.sum(0)

    return jax.jit(steps, donate_argnums=(0,))


def make_eval_step(task: Task):
    """Jitted (params, model_state, opt_state, images, labels, valid, key) -> [loss_sum, correct]."""

    @trace_once(f"{task.name} eval step")
    def step(params, model_state, opt_state, images, labels, valid, key):
        out, _ = task.forward(params, model_state, opt_state, images, False, key, 0)
        logits = logits_of(out)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = (jnp.argmax(logits, -1) == labels) & valid
        return jnp.stack([jnp.sum(jnp.where(valid, ce, 0.0)), jnp.sum(correct).astype(jnp.float32)])

    return jax.jit(step)


def evaluate(eval_step, state: TrainState, data: DeviceData, batch_size: int, key=None):
    """Accuracy and mean loss over a whole split (last batch padded, one trace)."""
    n = len(data)
    key = jax.random.key(0) if key is None else key
    total = jnp.zeros(2)
    for start in range(0, n, batch_size):
        idx = jnp.minimum(jnp.arange(start, start + batch_size), n - 1)
        valid = jnp.arange(start, start + batch_size) < n
        total = total + eval_step(state.params, state.model_state, state.opt_state,
                                  data.images[idx], data.labels[idx], valid, key)
    loss_sum, correct = np.asarray(total)
    return {"accuracy": float(correct) / n, "loss": float(loss_sum) / n}


def epoch_calls(steps_per_epoch: int, scan_steps: int, epoch: int,
                late_step: int | None = None) -> list:
    """The train-step calls of one epoch: (first batch, steps, late) each. Fused calls of
    `scan_steps` steps, the remainder one step per call; a fused call that `late_step` (the
    stage step `Task.late` starts at) falls inside runs one step per call; `late`: the call's
    steps are at or after `late_step`."""
    calls, rest = divmod(steps_per_epoch, scan_steps)
    start = epoch * steps_per_epoch
    out = []
    for first, n in [(c * scan_steps, scan_steps) for c in range(calls)] + [
            (calls * scan_steps + r, 1) for r in range(rest)]:
        s0 = start + first
        pieces = ([(first + i, 1) for i in range(n)]
                  if late_step is not None and s0 < late_step < s0 + n else [(first, n)])
        out += [(f, k, late_step is not None and start + f >= late_step) for f, k in pieces]
    return out


def fit(task: Task, state: TrainState, train: DeviceData, test: DeviceData, tcfg, workdir: Path,
        writer, seed_key, stop_after_epoch: int | None = None, select: Selection | None = None):
    """Trains one stage to `task.epochs`, resuming from its checkpoints. Returns (state, info).

    `stop_after_epoch` ends this call early after that epoch (simulates a preemption in tests).
    With `select`, the returned state is the best-scoring candidate's and info['selection']
    records every score and the chosen epoch; info['final'] evaluates the returned state.
    """
    bs = tcfg.batch_size
    steps_per_epoch = len(train) // bs
    if steps_per_epoch < 1:
        raise ValueError(f"train.batch_size={bs} is larger than the training set ({len(train)})")
    scan_steps = max(1, min(tcfg.scan_steps, steps_per_epoch))
    late_step = None if task.late is None else task.late[0]
    step_fns = {}

    late_tasks = []  # the late task, built once from the state at its first step

    def step_fn(n: int, late: bool, state):  # compiled on first use: (steps per call, late)
        if late and not late_tasks:
            late_tasks.append(task.late_task(state))
        if (n, late) not in step_fns:
            step_fns[n, late] = make_train_step(late_tasks[0] if late else task, bs,
                                                tcfg.label_smoothing, tcfg.augment, n)
        return step_fns[n, late]

    eval_step = make_eval_step(task)
    data_key, step_key, eval_key = jax.random.split(seed_key, 3)

    ckpt = StageCheckpointer(workdir, task.name)
    start_epoch = 0
    restored, _ = ckpt.restore_newest_intact(state)  # a damaged newest one: the one before
    if restored is not None:
        state = restored
        start_epoch = int(state.step) // steps_per_epoch
        log.info("stage %s: resumed at epoch %d (step %d)", task.name, start_epoch, int(state.step))
    info = {"stage": task.name, "epochs": task.epochs, "steps_per_epoch": steps_per_epoch,
            "epoch_times_s": [], "eval": []}
    last_good = ckpt.latest_step()
    sel = None if select is None else _SelectionLog(workdir, task.name, start_epoch)
    bar = tqdm(range(start_epoch, task.epochs), desc=task.name, unit="epoch",
               initial=start_epoch, total=task.epochs, disable=tcfg.quiet)
    for epoch in bar:
        t0 = time.perf_counter()
        perm = epoch_permutation(data_key, len(train), epoch)
        acc = jnp.zeros(2)
        for first, n, late in epoch_calls(steps_per_epoch, scan_steps, epoch, late_step):
            state, m = step_fn(n, late, state)(state, train.images, train.labels, perm,
                                               jnp.int32(first), step_key)
            acc = acc + m
        loss_sum, correct = np.asarray(acc)  # one host sync per epoch
        epoch_s = time.perf_counter() - t0
        train_loss = float(loss_sum) / steps_per_epoch
        if not math.isfinite(train_loss):
            ckpt.close()
            where = f"{ckpt.directory}/{last_good}" if last_good is not None else "none saved yet"
            raise NonFiniteLossError(
                f"stage {task.name}: non-finite training loss ({train_loss}) in epoch {epoch + 1}; "
                f"stopped; last good checkpoint: {where} (try a lower learning rate: "
                f"{'train' if task.name == 'fp' else task.name}.lr)")
        record = {"stage": task.name, "epoch": epoch + 1, "train_loss": train_loss,
                  "train_accuracy": float(correct) / (steps_per_epoch * bs), "epoch_s": epoch_s}
        if task.schedule is not None:
            record["lr"] = float(task.schedule(int(state.step)))
        final = epoch + 1 == task.epochs
        if final or (tcfg.eval_every and (epoch + 1) % tcfg.eval_every == 0):
            ev = evaluate(eval_step, state, test, tcfg.eval_batch_size, eval_key)
            record.update(test_accuracy=ev["accuracy"], test_loss=ev["loss"])
            info["eval"].append({"epoch": epoch + 1, **ev})
        if sel is not None and epoch + 1 in select.epochs:
            mean, std = select.score(state)
            record.update(select_accuracy=mean, select_std=std)
            sel.offer(epoch + 1, state, mean, std)
        info["epoch_times_s"].append(epoch_s)
        writer.write(int(state.step), **record)
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=record.get("test_accuracy", "-"))
        stop = stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and not final
        if final or stop or (epoch + 1) % tcfg.checkpoint_every == 0:
            ckpt.save(int(state.step), state)
            last_good = int(state.step)
        if stop:
            info["interrupted"] = True
            break
    bar.close()
    if not info["eval"] and not info.get("interrupted"):
        ev = evaluate(eval_step, state, test, tcfg.eval_batch_size, eval_key)
        info["eval"].append({"epoch": task.epochs, **ev})
    ckpt.close()
    info["final"] = info["eval"][-1] if info["eval"] else None
    if sel is not None and not info.get("interrupted") and sel.best is not None:
        best = sel.best
        if best["epoch"] != task.epochs:
            state = sel.best_state(state)
            info["final"] = {"epoch": best["epoch"],
                             **evaluate(eval_step, state, test, tcfg.eval_batch_size, eval_key)}
        info["selection"] = {**select.what, "scores": sel.scores, "chosen_epoch": best["epoch"]}
        log.info("stage %s: deploying epoch %d (selection score %.4f)", task.name,
                 best["epoch"], best["mean"])
    if sel is not None:
        sel.ckpt.close()
    return state, info
