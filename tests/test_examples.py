"""examples/own_model.py runs from the repository root, as the README says, within 2 minutes."""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_own_model_example_runs_the_whole_chain_in_under_two_minutes(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "examples.own_model", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["model"] == "MyNet" and not s["partial"]
    assert s["accuracy"]["engine_exact_logits"] == 1.0
    assert s["montecarlo"]["chips"] == 4 and s["cost"]["tiles"] < s["cost"]["dense_tiles"]
    assert "CRIMP" in proc.stdout and "add0" in proc.stdout  # the graph and the result
    assert elapsed < 120, f"example took {elapsed:.0f} s"
