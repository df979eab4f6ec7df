"""The graph read from each registered model reproduces the integer-engine logits of the
hand-written graphs it replaced (tests/golden/engine_logits.npz, written before the change)."""

import numpy as np
import pytest

from crimp_jax.integer import load_artifact, run_engine, save_artifact
from tests.golden.make_engine_golden import MODELS, OUT, chain, images


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_read_graph_gives_the_engine_logits_of_the_hand_written_graph(name, tmp_path):
    golden = np.load(OUT)
    logits, e, art = chain(name)
    assert int(e) == int(golden[f"{name}/exponent"])
    np.testing.assert_array_equal(logits, golden[f"{name}/logits"])
    save_artifact(art, str(tmp_path / "a.npz"))  # the header of every op is JSON
    again, _ = run_engine(load_artifact(str(tmp_path / "a.npz")), images(4, 1))
    np.testing.assert_array_equal(np.asarray(again), logits)
