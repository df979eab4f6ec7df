"""The graph read from each registered model reproduces the integer-engine logits of the
hand-written graphs it replaced (tests/golden/engine_logits.npz, written before the change)."""

import numpy as np
import pytest

from tests.golden.make_engine_golden import MODELS, OUT, chain


@pytest.mark.parametrize("name", MODELS)
def test_read_graph_gives_the_engine_logits_of_the_hand_written_graph(name):
    golden = np.load(OUT)
    logits, e = chain(name)
    assert int(e) == int(golden[f"{name}/exponent"])
    np.testing.assert_array_equal(logits, golden[f"{name}/logits"])
