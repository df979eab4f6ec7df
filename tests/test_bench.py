"""experiments.bench prints one JSON line per measurement, with the ratios the issues ask for."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_prints_every_measurement(tmp_path):
    out = tmp_path / "bench.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--config=experiments/configs/quickstart.py:tiny",
         "--models=tiny_cnn", "--batches=20", "--steps=1", "--what=plain,crimp,mc,engine",
         "--chips=2", "--mc_images=60", "--config.crimp.variation_draws=2", f"--out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["bench"] for r in rows] == ["plain", "crimp_step", "montecarlo", "engine"]
    plain, crimp, mc, engine = rows
    assert plain["train_images_per_s"] > 0 and plain["infer_images_per_s"] > 0
    assert crimp["crimp_over_plain"] == crimp["crimp_step_s"] / crimp["plain_step_s"] > 0
    assert crimp["variation_draws"] == 2
    assert mc["n_images"] == 60 and mc["n_chips"] == 2 and mc["batch_size"] == 20
    for impl in ("vmap", "loop"):
        assert mc[f"{impl}_ratio_to_plain"] > 0
    assert engine["engine_images_per_s"] > 0 and engine["fake_quant_images_per_s"] > 0
    for r in rows:
        assert r["platform"] == "cpu" and r["date"].startswith("20")


def test_bench_rejects_unknown_measurement():
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--config=experiments/configs/quickstart.py:tiny",
         "--what=speed"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--what" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--config=experiments/configs/quickstart.py:tiny",
         "--what=mc", "--mc_impls=scan"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--mc_impls=['scan']" in proc.stderr
