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
    s = {"model": "tiny_cnn", "ablation": "crimp", "accuracy": {"fp": 0.5, "integer_engine": acc},
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
    s = {"model": "resnet20", "num_params": 1, "ablation": "q", "train_images": 1,
         "test_images": 1, "accuracy": {"fp": 0.5}, "wall_s": 3.0, "epoch_s_median": None,
         "device": {"kind": "cpu", "platform": "cpu"}}
    assert "float stage reused" in summary_lines(s)[-1]
    s["epoch_s_median"] = 1.234
    assert "1.23 s/epoch" in summary_lines(s)[-1]
