"""examples/own_model.py runs the whole chain, and it is the README's "Bring your own model"
snippet verbatim, so the README's code runs as written (run here in this process from a
scratch folder, as `python examples/own_model.py` runs it; its run time is the README's to
state, not a test's)."""

import contextlib
import io
import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Bring your own model"):]
    block = section[section.index("```python\n") + len("```python\n"):]
    return block[:block.index("```\n")]


def test_the_readme_snippet_is_the_example_verbatim():
    snippet = readme_snippet()
    assert "cj.run(MyNet(), config" in snippet and "class MyNet" in snippet
    assert snippet in (ROOT / "examples" / "own_model.py").read_text()


@pytest.mark.slow
def test_own_model_example_runs_the_whole_chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(ROOT / "examples" / "own_model.py"), run_name="__main__")
    s = json.loads((tmp_path / "runs" / "mynet" / "summary.json").read_text())
    assert s["model"] == "MyNet" and not s["partial"]
    assert s["accuracy"]["engine_exact_logits"] == 1.0
    assert s["montecarlo"]["chips"] == 4 and s["cost"]["tiles"] < s["cost"]["dense_tiles"]
    assert "CRIMP" in out.getvalue() and "add0" in out.getvalue()  # the graph and the result
