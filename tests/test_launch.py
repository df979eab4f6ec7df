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


def test_gpu_montecarlo_script_runs_end_to_end_at_tiny_size(tmp_path):
    """launch/gpu_montecarlo.sh (prepared for a lent GPU) with the tiny configs on CPU: the run
    reports both compensation curves, the bench line its ratio, and the archive holds both."""
    import os
    import subprocess
    import sys
    import tarfile
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    env = os.environ | {
        "RUNS_DIR": str(tmp_path / "runs"), "PYTHON": sys.executable,
        "RUN_CONFIG": "experiments/configs/quickstart.py:tiny",
        "RUN_OVERRIDES": "--config.evaluate.compensation=('off','on') --config.train.quiet=True "
                         "--config.data.source=synthetic",
        "BENCH_CONFIG": "experiments/configs/quickstart.py:tiny", "BENCH_MODELS": "tiny_cnn",
        "BENCH_FLAGS": "--batches=20 --chips=2 --mc_images=40 --mc_impls=loop"}
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "launch/gpu_montecarlo.sh", str(out)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = (tmp_path / "runs" / "status.txt").read_text()
    assert "run rc=0" in status and "bench rc=0" in status, status
    summary = json.loads((tmp_path / "runs" / "run" / "summary.json").read_text())
    assert set(summary["montecarlo"]["curves"]) == {"adaptation", "both"}
    (row,) = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert row["bench"] == "montecarlo" and row["loop_ratio_to_plain"] > 0
    assert "vmap_s" not in row
    with tarfile.open(out / "gpu_montecarlo.tgz") as tar:
        names = tar.getnames()
    assert "./run/summary.json" in names and "./bench.log" in names
    assert not any("checkpoints" in n for n in names)


def test_gpu_paper_script_runs_end_to_end_at_tiny_size(tmp_path):
    """launch/gpu_paper.sh (prepared for a lent GPU) with the tiny stand-in config on CPU: all
    four runs finish, the ResNet-56 runs reuse one float stage, the archive holds them."""
    import os
    import subprocess
    import sys
    import tarfile
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    env = os.environ | {"RUNS_DIR": str(tmp_path / "runs"), "PYTHON": sys.executable,
                        "VGG_CONFIG": "experiments/configs/tiny_crimp.py",
                        "R56_CONFIG": "experiments/configs/tiny_crimp.py"}
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "launch/gpu_paper.sh", str(out), "3"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = (out / "status.txt").read_text()
    for name in ("vgg16_crimp", "resnet56_fp", "resnet56_crimp", "resnet56_qp"):
        assert f"{name} rc=0" in status, status
    runs = tmp_path / "runs"
    crimp = json.loads((runs / "resnet56_crimp" / "summary.json").read_text())
    assert crimp["epoch_s_median"] is None  # the float stage was reused, not retrained
    assert set(crimp["montecarlo"]["curves"]) == {"both"}
    assert crimp["montecarlo"]["sigmas"] == [0.0, 0.3]
    with tarfile.open(out / "gpu_paper.tgz") as tar:
        names = tar.getnames()
    assert "./resnet56_qp/summary.json" in names and "./vgg16_crimp.log" in names
    assert not any("checkpoints" in n for n in names)
