"""Training loop: locked configs, resume equality, non-finite stop, determinism, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from crimp_jax.train import pipeline
from crimp_jax.train.checkpoint import StageCheckpointer
from crimp_jax.train.loop import NonFiniteLossError
from experiments.configs import quickstart
from tests.conftest import needs_data

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**train):
    c = quickstart.get_config("tiny")
    c.train.quiet = True
    c.train.epochs = 2
    for k, v in train.items():
        setattr(c.train, k, v)
    return c


def final_params(workdir, config):
    """Params of the last checkpoint of the float stage."""
    model = pipeline.build_model(config.model.name)
    task = pipeline.fp_task(config, model, 1)
    state = pipeline.init_fp_state(config, model, task.tx)
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


@needs_data
def test_resume_equals_uninterrupted_run(tmp_path):
    full = pipeline.train_and_evaluate(tiny_config(), tmp_path / "full")
    part = pipeline.train_and_evaluate(tiny_config(), tmp_path / "resumed", stop_after_epoch=1)
    assert part == {"interrupted": True, "stage": "fp"}
    resumed = pipeline.train_and_evaluate(tiny_config(), tmp_path / "resumed")
    a, b = final_params(tmp_path / "full", tiny_config()), final_params(tmp_path / "resumed",
                                                                         tiny_config())
    assert int(a.step) == int(b.step) == 2 * (200 // 50)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    jax.tree.map(np.testing.assert_array_equal, a.model_state, b.model_state)
    assert full["test_accuracy"] == resumed["test_accuracy"]
    # Same seed, same result; the summary is on disk.
    on_disk = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert on_disk["test_accuracy"] == full["test_accuracy"]
    for key in ("model", "epochs", "test_accuracy", "wall_s", "device", "config"):
        assert key in on_disk


@needs_data
def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    # Epoch 1 trains normally; the 'step' schedule multiplies lr by 1e30 from epoch 2 on.
    c = tiny_config(schedule="step", step_milestones=(1,), step_gamma=1e30)
    with pytest.raises(NonFiniteLossError) as e:
        pipeline.train_and_evaluate(c, tmp_path)
    msg = str(e.value)
    assert "non-finite" in msg and "epoch 2" in msg and "checkpoints/fp/4" in msg
    ckpt = StageCheckpointer(tmp_path, "fp")
    assert ckpt.latest_step() == 4  # epoch 1's checkpoint survived, nothing newer was written
    ckpt.close()
    state = final_params(tmp_path, c)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


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


@needs_data
def test_cli_workdir_of_another_model(tmp_path):
    (tmp_path / "run_identity.json").write_text(json.dumps(
        {"model": "vgg16", "train_per_class": 20}))
    line = one_error_line(run_cli("--config=experiments/configs/quickstart.py:tiny",
                                  f"--workdir={tmp_path}"))
    assert "vgg16" in line and "tiny_cnn" in line and "--workdir" in line
