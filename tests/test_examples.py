"""examples/own_model.py runs the whole chain as the README shows (run here in this process,
as `python -m examples.own_model WORKDIR` runs it; its run time is the README's to state, not a
test's)."""

import contextlib
import io
import json
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_own_model_example_runs_the_whole_chain(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(ROOT / "examples" / "own_model.py"), str(tmp_path)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_module("examples.own_model", run_name="__main__")
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["model"] == "MyNet" and not s["partial"]
    assert s["accuracy"]["engine_exact_logits"] == 1.0
    assert s["montecarlo"]["chips"] == 4 and s["cost"]["tiles"] < s["cost"]["dense_tiles"]
    assert "CRIMP" in out.getvalue() and "add0" in out.getvalue()  # the graph and the result
