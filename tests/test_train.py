"""Training loop: locked configs, resume equality, non-finite stop, determinism, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from crimp_jax.config import parse_config
from crimp_jax.train import pipeline
from crimp_jax.train.checkpoint import StageCheckpointer
from crimp_jax.train.loop import NonFiniteLossError
from experiments.configs import quickstart
from tests.conftest import needs_data, tiny_config

REPO = Path(__file__).resolve().parents[1]


def tiny(**train):
    return tiny_config(**{"method": "fp", "train.epochs": 2,
                          **{f"train.{k}": v for k, v in train.items()}})


def final_params(workdir, config):
    """Params of the last checkpoint of the float stage."""
    run = parse_config(config)
    model = pipeline.build_network(run.model.name)
    task = pipeline.fp_task(run, model, 1)
    state = pipeline.init_fp_state(run, model, task.tx)
    ckpt = StageCheckpointer(workdir, "fp")
    restored = ckpt.restore(state)
    ckpt.close()
    return restored


def test_config_is_locked():
    c = quickstart.get_config("")
    with pytest.raises(AttributeError, match="epocs"):
        c.train.epocs = 3
    with pytest.raises(ValueError, match="'huge'"):
        quickstart.get_config("huge")


def test_resume_equals_uninterrupted_run(tmp_path):
    full = pipeline.train_and_evaluate(tiny(), tmp_path / "full")
    part = pipeline.train_and_evaluate(tiny(), tmp_path / "resumed", stop_after_epoch=1)
    assert part == {"interrupted": True, "stage": "fp"}
    resumed = pipeline.train_and_evaluate(tiny(), tmp_path / "resumed")
    a, b = final_params(tmp_path / "full", tiny()), final_params(tmp_path / "resumed", tiny())
    assert int(a.step) == int(b.step) == 2 * (200 // 50)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    jax.tree.map(np.testing.assert_array_equal, a.model_state, b.model_state)
    assert full["test_accuracy"] == resumed["test_accuracy"]
    # Same seed, same result; the summary is on disk.
    on_disk = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert on_disk["test_accuracy"] == full["test_accuracy"]
    for key in ("model", "epochs", "test_accuracy", "wall_s", "device", "config"):
        assert key in on_disk


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    # Epoch 1 trains normally; from epoch 2 on the rate is 1e30 (a schedule no config
    # accepts: step_gamma is limited to (0, 1], so the schedule is patched in).
    from crimp_jax.train import optim
    real = optim.make_schedule
    monkeypatch.setattr(pipeline, "make_optimizer", lambda spec, spe, epochs: _blowup(
        real(spec, spe, epochs), spec, spe))
    c = tiny()
    with pytest.raises(NonFiniteLossError) as e:
        pipeline.train_and_evaluate(c, tmp_path)
    msg = str(e.value)
    assert "non-finite" in msg and "epoch 2" in msg and "checkpoints/fp/4" in msg
    ckpt = StageCheckpointer(tmp_path, "fp")
    assert ckpt.latest_step() == 4  # epoch 1's checkpoint survived, nothing newer was written
    ckpt.close()
    state = final_params(tmp_path, c)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def _blowup(schedule, spec, steps_per_epoch):
    import jax.numpy as jnp
    import optax

    from crimp_jax.train.optim import decay_mask
    lr = lambda step: jnp.where(step < steps_per_epoch, schedule(step), 1e30)  # noqa: E731
    return optax.chain(optax.add_decayed_weights(spec.weight_decay, mask=decay_mask),
                       optax.sgd(lr, momentum=0.9)), lr


def run_cli(*args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=REPO, env=e,
                          capture_output=True, text=True, timeout=300)


def one_error_line(proc):
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0]


def test_cli_unknown_model(tmp_path):
    line = one_error_line(run_cli("--config=experiments/configs/quickstart.py:tiny",
                                  f"--workdir={tmp_path}", "--config.model.name=resnet57"))
    assert "resnet57" in line and "resnet56" in line and "vgg16" in line


def test_cli_misspelt_key(tmp_path):
    proc = run_cli("--config=experiments/configs/quickstart.py:tiny", f"--workdir={tmp_path}",
                   "--config.train.epocs=3")
    assert proc.returncode != 0
    assert "epocs" in proc.stderr
    assert not (tmp_path / "metrics.jsonl").exists()


def test_cli_missing_data(tmp_path):
    line = one_error_line(run_cli("--config=experiments/configs/quickstart.py:tiny",
                                  f"--workdir={tmp_path}", f"--config.data.data_dir={tmp_path}"))
    assert "data_dir" in line and "cifar10_jpeg_q75.npz" in line


def test_cli_workdir_of_another_model(tmp_path):
    (tmp_path / "run_identity.json").write_text(json.dumps(
        {"model": "vgg16", "train_per_class": 20}))
    line = one_error_line(run_cli("--config=experiments/configs/quickstart.py:tiny",
                                  f"--workdir={tmp_path}"))
    assert "vgg16" in line and "tiny_cnn" in line and "--workdir" in line


TINY = "--config=experiments/configs/quickstart.py:tiny"
# (override, the key its one error line must name): at least one bad value for every block,
# types, NaN, out-of-range, unknown keys and an unknown block.
MALFORMED = [
    ("--config.model.name=resnet57", "model.name"),
    ("--config.model.dtype=float16", "model.dtype"),
    ("--config.data.source=ftp", "data.source"),
    ("--config.data.train_per_class=-1", "data.train_per_class"),
    ("--config.data.test_per_class=5000", "data.test_per_class"),
    ("--config.data.val_per_class=-5", "data.val_per_class"),
    ("--config.train.epochs=-1", "train.epochs"),  # 0 is allowed (no float training)
    ("--config.train.epochs=abc", "train.epochs"),
    ("--config.train.lr=nan", "train.lr"),
    ("--config.train.step_gamma=nan", "train.step_gamma"),
    ("--config.train.momentum=1.5", "train.momentum"),
    ("--config.train.label_smoothing=1.0", "train.label_smoothing"),
    ("--config.train.batch_size=1000", "train.batch_size"),
    ("--config.train.epocs=3", "epocs"),
    ("--config.crimp.step_gamma=-1.5", "crimp.step_gamma"),
    ("--config.crimp.lr=0.0", "crimp.lr"),
    ("--config.crimp.optimizer=rmsprop", "crimp.optimizer"),
    ("--config.crimp.ramp_epochs=99", "crimp.ramp_epochs"),
    ("--config.crimp.distill_weight=2.0", "crimp.distill_weight"),
    ("--config.crimp.warmup_epochs=-1.0", "crimp.warmup_epochs"),
    ("--config.crimp.select_chips=4", "crimp.select_chips"),  # without a validation split
    ("--config.xbar.rows=0", "xbar.rows"),
    ("--config.xbar.bits_per_cell=9", "xbar.bits_per_cell"),
    ("--config.quant.weight_bits=9", "quant.weight_bits"),
    ("--config.quant.act_percentile=0.0", "quant.act_percentile"),
    ("--config.prune.target_sparsity=1.0", "prune.target_sparsity"),
    ("--config.prune.min_keep=-0.1", "prune.min_keep"),
    ("--config.variation.sigma=-1.5", "variation.sigma"),
    ("--config.variation.read_noise=1e30", "variation.read_noise"),
    ("--config.variation.on_off_ratio=0.5", "variation.on_off_ratio"),
    ("--config.evaluate.batch_size=0", "evaluate.batch_size"),
    ("--config.evaluate.batch_size=-3", "evaluate.batch_size"),
    ("--config.evaluate.headline_sigma=-1", "evaluate.headline_sigma"),
    ("--config.evaluate.chips=-1", "evaluate.chips"),
    ("--config.evaluate.mc_impl=pmap", "evaluate.mc_impl"),
    ("--config.cost.adc_columns=0", "cost.adc_columns"),
    ("--config.cost.multiplier=fp64", "cost.multiplier"),
    ("--config.method=qpv", "method"),
    ("--config.no_such_block.x=1", "no_such_block"),
]


def test_cli_refuses_every_malformed_value_with_one_line_and_exit_2(tmp_path):
    """Each bad value: exit status 2 within seconds, exactly one `error:` line naming the key,
    no traceback, nothing written to the workdir (all before any data load or compile)."""
    import concurrent.futures
    import time

    def one(i_case):
        i, (override, key) = i_case
        t0 = time.perf_counter()
        proc = run_cli(TINY, f"--workdir={tmp_path / str(i)}", "--config.data.source=synthetic",
                       override)
        return override, key, proc, time.perf_counter() - t0

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(one, enumerate(MALFORMED)))
    assert len(results) >= 25
    blocks = {key.split(".")[0] for _, key, _, _ in results if "." in key}
    assert blocks >= {"model", "data", "train", "crimp", "xbar", "quant", "prune", "variation",
                      "evaluate", "cost"}
    for override, key, proc, seconds in results:
        line = one_error_line(proc)
        assert key in line, (override, line)
        assert "Traceback" not in proc.stderr, (override, proc.stderr[-1500:])
        assert seconds < 30, (override, seconds)
    assert not any((tmp_path / str(i) / "metrics.jsonl").exists() for i in range(len(MALFORMED)))


@needs_data
def test_learns_above_chance_on_real_cifar10(tmp_path):
    """Real pixels (needs the offline npz): the tiny CNN learns CIFAR-10 above chance in three
    epochs on 2,000 images."""
    c = tiny(epochs=3)
    with c.unlocked():
        c.data.source = "npz"
        c.data.train_per_class, c.data.test_per_class = 200, 50
    s = pipeline.train_and_evaluate(c, tmp_path)
    assert s["accuracy"]["fp"] > 0.2, s["accuracy"]


def test_cli_default_workdir_is_named_after_the_config():
    from experiments.run import default_workdir
    assert default_workdir(["run", "--config=experiments/configs/quickstart.py"]) == \
        "runs/quickstart"
    assert default_workdir(["run", "--config", "experiments/configs/resnet20_proxy.py:qp50",
                            "--config.train.epochs=2"]) == "runs/resnet20_proxy_qp50"
    assert default_workdir(["run", "--config=experiments/configs/vgg16_cifar10_crimp.py:crimp,gpu"]) \
        == "runs/vgg16_cifar10_crimp_crimp_gpu"
