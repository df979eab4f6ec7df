"""Sweep runner (grid parsing, naming, sharding, aggregation) and the console summary."""

import json

import pytest

from crimp_jax.report_console import summary_lines
from launch import sweep


def test_parse_grid_is_the_cartesian_product():
    assert sweep.parse_grid("a.b=1,2 c=x") == [{"a.b": "1", "c": "x"}, {"a.b": "2", "c": "x"}]
    assert sweep.parse_grid("") == [{}]
    with pytest.raises(ValueError, match="'sigma'"):
        sweep.parse_grid("sigma")
    assert sweep.point_name({"a": "1", "b": "2"}) == "a=1,b=2"
    assert sweep.point_name({}) == "base"


def _summary(acc, sigma_mean=None, partial=False):
    s = {"model": "tiny_cnn", "method": "crimp", "accuracy": {"fp": 0.5, "integer_engine": acc},
         "test_accuracy": acc, "partial": partial, "device": {"kind": "cpu"}, "date": "2026"}
    if sigma_mean is not None:
        s["montecarlo"] = {"headline_sigma": 0.3, "curves": {"both": {"0.3": {"mean": sigma_mean}}}}
    return s


def test_dry_run_shards_and_aggregates(tmp_path, capsys):
    root = tmp_path / "sweep"
    rc = sweep.main(["--config=cfg.py", f"--root={root}", "--grid=x=1,2,3", "--shard=1/2",
                     "--dry_run", "--", "--config.train.quiet=True"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "--config.x=2" in out and "--config.x=1" not in out and "--config.x=3" not in out
    assert "--config.train.quiet=True" in out
    # Aggregation reads finished summaries only as they are; a finished point is skipped.
    (root / "x=1").mkdir()
    (root / "x=1" / "summary.json").write_text(json.dumps(_summary(0.4, 0.38)))
    rows = sweep.aggregate(root)
    assert rows[0]["point"] == "x=1" and rows[0]["engine"] == 0.4
    assert rows[0]["mc_headline"] == {"both": 0.38}
    assert "| x=1 | tiny_cnn | crimp |" in (root / "sweep.md").read_text()
    sweep.main(["--config=cfg.py", f"--root={root}", "--grid=x=1", "--dry_run"])
    assert "done" in capsys.readouterr().out
    assert sweep.main(["--config=cfg.py", f"--root={root}", "--shard=2/2"]) == 2


def test_console_summary_when_the_float_stage_was_reused():
    s = {"model": "resnet20", "num_params": 1, "method": "q", "train_images": 1,
         "test_images": 1, "accuracy": {"fp": 0.5}, "wall_s": 3.0, "epoch_s_median": None,
         "device": {"kind": "cpu", "platform": "cpu"}}
    assert "float stage reused" in summary_lines(s)[-1]
    s["epoch_s_median"] = 1.234
    assert "1.23 s/epoch" in summary_lines(s)[-1]


# --- the GPU launch scripts, with a stub interpreter ----------------------------------------
# What a launch script itself does (which runs in which order, with which configs and
# overrides, the float stage copied between workdirs, a status line per run that goes on after
# a failed one, an archive without checkpoints) is tested with a stub `python` that records its
# arguments instead of training. That the configs and overrides the scripts pass are valid is
# checked by parsing them exactly as `experiments.run` does; that a copied float stage is
# reused, not retrained, by `tests/test_train.py::test_a_copied_float_stage_is_reused`.

STUB = r"""#!/usr/bin/env bash
# Records its arguments; for `-m experiments.run` writes a summary.json saying whether the
# workdir already held a float stage, a checkpoint and an npz; fails for a config matching
# $STUB_FAIL; for `-m experiments.bench` appends one JSON line to --out.
echo "$*" >> "$STUB_LOG"
workdir=""; out=""; config=""
for a in "$@"; do
  case "$a" in
    --workdir=*) workdir=${a#--workdir=} ;;
    --out=*) out=${a#--out=} ;;
    --config=*) config=${a#--config=} ;;
  esac
done
if [ -n "$workdir" ]; then
  had_fp=false; [ -d "$workdir/checkpoints/fp" ] && had_fp=true
  mkdir -p "$workdir/checkpoints/fp/1"
  echo state > "$workdir/checkpoints/fp/1/state"
  echo npz > "$workdir/model_int.npz"
  echo "{\"config\": \"$config\", \"had_fp\": $had_fp}" > "$workdir/summary.json"
fi
[ -n "$out" ] && echo '{"bench": "montecarlo"}' >> "$out"
case "$config" in *${STUB_FAIL:-no-such-config}*) exit 1 ;; esac
exit 0
"""


def _run_script(tmp_path, script, extra_env=None, *args):
    import os
    import subprocess
    from pathlib import Path
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(0o755)
    env = os.environ | {"RUNS_DIR": str(tmp_path / "runs"), "PYTHON": str(stub),
                        "STUB_LOG": str(tmp_path / "calls.txt"), **(extra_env or {})}
    out = tmp_path / "out"
    proc = subprocess.run(["bash", script, str(out), *args], cwd=Path(__file__).parents[1],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    return out, calls


def _archive_names(path):
    import tarfile
    with tarfile.open(path) as tar:
        return tar.getnames()


def _overrides(call: str) -> list:
    return [a for a in call.split() if a.startswith("--config.")]


def _parse_like_the_cli(config: str, overrides: list):
    """The config file and overrides parsed and validated as `experiments.run` does (flags,
    every block, the rules between blocks), without any data or training."""
    from crimp_jax.config import parse_config
    from tests.conftest import cli_in_process
    return parse_config(cli_in_process(f"--config={config}", *overrides, parse_only=True))


def test_gpu_paper_script_runs_its_four_runs_and_reuses_one_float_stage(tmp_path):
    out, calls = _run_script(tmp_path, "launch/gpu_paper.sh", {"STUB_FAIL": "vgg16"}, "3")
    configs = [c.split("--config=")[1].split()[0] for c in calls]
    assert configs == ["experiments/configs/vgg16_cifar10_crimp.py:crimp,gpu_paper",
                       "experiments/configs/resnet56_cifar10_crimp.py:fp,gpu_paper",
                       "experiments/configs/resnet56_cifar10_crimp.py:crimp,gpu_paper",
                       "experiments/configs/resnet56_cifar10_crimp.py:qp,gpu_paper"]
    assert all(c.startswith("-m experiments.run ") for c in calls)
    runs = tmp_path / "runs"
    had_fp = {n: json.loads((runs / n / "summary.json").read_text())["had_fp"]
              for n in ("vgg16_crimp", "resnet56_fp", "resnet56_crimp", "resnet56_qp")}
    assert had_fp == {"vgg16_crimp": False, "resnet56_fp": False, "resnet56_crimp": True,
                      "resnet56_qp": True}  # both second stages start from resnet56_fp's
    status = (out / "status.txt").read_text()
    assert "vgg16_crimp rc=1" in status  # a failed run is reported and the script goes on
    for name in ("resnet56_fp", "resnet56_crimp", "resnet56_qp"):
        assert f"{name} rc=0" in status, status
    names = _archive_names(out / "gpu_paper.tgz")
    assert "./resnet56_qp/summary.json" in names and "./vgg16_crimp.log" in names
    assert not any("checkpoints" in n or n.endswith(".npz") for n in names)
    # The configs and the Monte Carlo overrides it passes are valid as the CLI parses them.
    for config, call in zip(configs, calls):
        run = _parse_like_the_cli(config, _overrides(call))
        assert run.evaluate.sigmas == (0.0, 0.3) and run.evaluate.compensation == ("on",)


def test_gpu_montecarlo_script_runs_the_run_and_the_bench(tmp_path):
    out, calls = _run_script(tmp_path, "launch/gpu_montecarlo.sh")
    run_call, bench_call = calls
    assert run_call.startswith("-m experiments.run ") and "--workdir=" in run_call
    assert bench_call.startswith("-m experiments.bench ")
    for flag in ("--models=vgg16,resnet56", "--what=mc", "--chips=16", "--mc_images=10000",
                 f"--out={out}/bench.jsonl"):
        assert flag in bench_call.split(), bench_call
    status = (tmp_path / "runs" / "status.txt").read_text()
    assert "run rc=0" in status and "bench rc=0" in status, status
    assert json.loads((out / "bench.jsonl").read_text())["bench"] == "montecarlo"
    names = _archive_names(out / "gpu_montecarlo.tgz")
    assert "./run/summary.json" in names and "./bench.log" in names
    assert not any("checkpoints" in n for n in names)
    run = _parse_like_the_cli(run_call.split("--config=")[1].split()[0], _overrides(run_call))
    assert run.evaluate.compensation == ("off", "on") and run.train.epochs == 20
