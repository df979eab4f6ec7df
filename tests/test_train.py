"""Training loop: locked configs, resume equality, non-finite stop, determinism, bad input."""

import json
import os
import re
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
from tests.conftest import cli_in_process, needs_data, tiny_config

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


@pytest.mark.slow
def test_resume_equals_uninterrupted_run(tmp_path, caplog):
    """Preempted after epoch 2 of 3, its newest checkpoint then damaged on disk: the resumed
    run falls back to epoch 1's checkpoint (one warning naming the step), keeps the damaged one
    aside, and finishes equal to an uninterrupted run."""
    from tests.test_checkpoint import damage_checkpoint
    full = pipeline.train_and_evaluate(tiny(epochs=3), tmp_path / "full")
    part = pipeline.train_and_evaluate(tiny(epochs=3), tmp_path / "resumed", stop_after_epoch=2)
    assert part == {"interrupted": True, "stage": "fp"}
    damage_checkpoint(tmp_path / "resumed" / "checkpoints" / "fp" / "8")
    caplog.set_level("WARNING")
    resumed = pipeline.train_and_evaluate(tiny(epochs=3), tmp_path / "resumed")
    (line,) = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert "fp/8 is damaged" in line and "resuming from step 4" in line
    assert (tmp_path / "resumed" / "checkpoints" / "fp.damaged" / "8").is_dir()
    a = final_params(tmp_path / "full", tiny(epochs=3))
    b = final_params(tmp_path / "resumed", tiny(epochs=3))
    assert int(a.step) == int(b.step) == 3 * (200 // 50)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    jax.tree.map(np.testing.assert_array_equal, a.model_state, b.model_state)
    assert full["test_accuracy"] == resumed["test_accuracy"]
    # Same seed, same result; the summary is on disk.
    on_disk = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert on_disk["test_accuracy"] == full["test_accuracy"]
    for key in ("model", "epochs", "test_accuracy", "wall_s", "device", "config"):
        assert key in on_disk
    # With no intact checkpoint left, the CLI refuses in one line naming the folder and
    # deletes nothing.
    for step in ("8", "12"):
        damage_checkpoint(tmp_path / "resumed" / "checkpoints" / "fp" / step)
    code, err = cli(TINY, f"--workdir={tmp_path / 'resumed'}", "--config.data.source=synthetic",
                    "--config.method=fp", "--config.train.epochs=3", "--config.train.quiet=True")
    line = one_error_line(code, err)
    assert f"no intact checkpoint in {tmp_path / 'resumed' / 'checkpoints' / 'fp'}" in line
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints" / "fp").iterdir()
                  if p.name.isdigit()) == ["12", "8"]


@pytest.mark.slow
def test_a_copied_float_stage_is_reused_not_retrained(tmp_path):
    """What the GPU launch scripts rely on (`seed_fp` in launch/gpu_paper.sh): a workdir given
    a finished float stage's checkpoints (copied, without their digests) trains only the
    second stage."""
    import shutil
    fp = pipeline.train_and_evaluate(tiny(), tmp_path / "fp")
    (tmp_path / "second" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "fp" / "checkpoints" / "fp",
                    tmp_path / "second" / "checkpoints" / "fp")
    c = tiny_config(**{"method": "q", "train.epochs": 2, "evaluate.chips": 0,
                       "evaluate.engine": False})
    s = pipeline.train_and_evaluate(c, tmp_path / "second")
    assert s["accuracy"]["fp"] == fp["accuracy"]["fp"]
    assert s["epoch_s_median"] is None and s["stages"][0]["epoch_s_median"] is None
    fp_epochs = [json.loads(ln)["stage"] for ln in
                 (tmp_path / "second" / "metrics.jsonl").read_text().splitlines()]
    assert "fp" not in fp_epochs and "crimp" in fp_epochs


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
    """`python -m experiments.run ARGS` in a subprocess: (exit status, stderr)."""
    e = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=REPO, env=e,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


def cli(*args):
    """`python -m experiments.run ARGS` in this process: (exit status, stderr)."""
    return cli_in_process(*args)


def one_error_line(code, stderr):
    assert code == 2, stderr[-2000:]
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return errors[0]


@pytest.mark.slow
def test_cli_subprocess_cases_exit_2_with_one_line_and_no_traceback(tmp_path):
    """The real process, for the few cases whose path differs outside pytest: a malformed
    override, a missing config file, and a damaged data archive (exit status 2, one `error:`
    line, no traceback, nothing written, the archive kept)."""
    line = one_error_line(*run_cli(TINY, f"--workdir={tmp_path / 'a'}",
                                   "--config.model.name=resnet57"))
    assert "resnet57" in line and "resnet56" in line and "vgg16" in line
    line = one_error_line(*run_cli("--config=experiments/configs/nope.py",
                                   f"--workdir={tmp_path / 'b'}"))
    assert "experiments/configs/nope.py: no such file" in line
    archive = tmp_path / "data" / "cifar10_jpeg_q75.npz"
    archive.parent.mkdir()
    archive.write_bytes(b"PK\x03\x04 truncated")
    line = one_error_line(*run_cli(TINY, f"--workdir={tmp_path / 'c'}",
                                   f"--config.data.data_dir={archive.parent}",
                                   env={"CRIMP_CACHE_DIR": str(tmp_path / "cache")}))
    assert f"{archive}: damaged or not an npz archive" in line and "intact copy" in line
    assert archive.read_bytes() == b"PK\x03\x04 truncated"
    assert not any((tmp_path / w).exists() for w in "abc")


def test_cli_misspelt_key(tmp_path):
    line = one_error_line(*cli(TINY, f"--workdir={tmp_path}", "--config.train.epocs=3"))
    assert line == ("error: --config.train.epocs=3: unknown config key 'epocs'; did you mean "
                    "'epochs'? (docs/config.md lists every key)")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_cli_missing_data(tmp_path):
    line = one_error_line(*cli(TINY, f"--workdir={tmp_path}", f"--config.data.data_dir={tmp_path}"))
    assert "data_dir" in line and "cifar10_jpeg_q75.npz" in line


def test_cli_config_file_missing_or_not_a_file(tmp_path):
    for spec, what in ((f"{tmp_path}/nope.py:tiny", "no such file"),
                       (str(tmp_path), "a folder, not a config file")):
        line = one_error_line(*cli(f"--config={spec}", f"--workdir={tmp_path / 'w'}"))
        assert line.startswith(f"error: --config={spec}: ") and what in line, line
        assert "get_config" in line
    assert not (tmp_path / "w").exists()


def test_cli_tfds_failure_offline_is_one_line(tmp_path, monkeypatch):
    """tensorflow-datasets failing (no internet) for a dataset only it provides."""
    import types
    fake = types.ModuleType("tensorflow_datasets")

    def load(*args, **kwargs):
        raise ConnectionError("Failed to establish a connection: no internet")

    fake.load = load
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    line = one_error_line(*cli(TINY, f"--workdir={tmp_path}", "--config.data.dataset=svhn_cropped",
                               "--config.data.train_per_class=0"))
    assert "svhn_cropped" in line and "no internet" in line and "tensorflow-datasets" in line


def test_cli_workdir_of_another_model(tmp_path):
    (tmp_path / "run_identity.json").write_text(json.dumps(
        {"model": "vgg16", "train_per_class": 20}))
    line = one_error_line(*cli(TINY, f"--workdir={tmp_path}"))
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
    ("--config.train.epochs=-1", "train.epochs"),
    ("--config.train.weight_decay=1e30", "train.weight_decay"),  # no physical meaning: [0, 1)
    ("--config.crimp.weight_decay=1.0", "crimp.weight_decay"),  # 0 is allowed (no float training)
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
    ("--config.prune.exclude=('conv', 'fc')", "prune.exclude"),  # selects no layer, method prunes
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


def test_cli_refuses_every_malformed_value_with_one_line_and_exit_2(tmp_path, monkeypatch):
    """Each bad value: exit status 2, exactly one `error:` line naming the key, nothing
    written to the workdir, and all before any data load (the loader is replaced by one that
    fails the test) and so before any compile."""
    from crimp_jax.train import pipeline as pipeline_mod

    def no_load(*a, **k):
        raise AssertionError("the data was loaded before the bad value was refused")

    monkeypatch.setattr(pipeline_mod, "load_splits", no_load)
    assert len(MALFORMED) >= 25
    blocks = {key.split(".")[0] for _, key in MALFORMED if "." in key}
    assert blocks >= {"model", "data", "train", "crimp", "xbar", "quant", "prune", "variation",
                      "evaluate", "cost"}
    for i, (override, key) in enumerate(MALFORMED):
        code, err = cli(TINY, f"--workdir={tmp_path / str(i)}", "--config.data.source=synthetic",
                        override)
        line = one_error_line(code, err)
        assert key in line, (override, line)
    assert not any((tmp_path / str(i)).exists() for i in range(len(MALFORMED)))


@pytest.mark.slow
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


def test_evaluate_cli_refuses_in_one_line(tmp_path):
    """`python -m experiments.evaluate`: a training key, a folder that is no finished run and a
    missing --workdir each end with one `error:` line and exit status 2 (its success path is
    `crimp_jax.train.finished.reevaluate`, run on a finished workdir in
    test_crimp_pipeline.py::test_whole_chain_writes_every_section; a run on a researcher's own
    module is refused there before anything loads, test_real_models.py, and re-read with
    `crimp_jax.api.reevaluate`, test_real_models.py and test_nnx.py)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"config": {"method": "crimp"}}))
    cases = [
        ([f"--workdir={tmp_path / 'run'}", "--config.crimp.lr=0.1"],
         r"^error: --config.crimp.lr=0.1: re-evaluation changes chip and evaluation settings "
         r"only \(blocks variation, adc, dac, evaluate, cost\); 'crimp' would change"),
        ([f"--workdir={tmp_path}"], r"^error: --workdir=.*: no summary.json in it"),
        (["--config.adc.bits=4"], r"^error: --workdir=DIR is required"),
    ]
    for args, want in cases:
        proc = subprocess.run([sys.executable, "-m", "experiments.evaluate", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and re.search(want, lines[0]), proc.stderr
