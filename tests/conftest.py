"""Shared test fixtures and configs.

End-to-end tests (the whole chain, resume, trace-once, the CLI, the sweep and launch scripts)
run on the synthetic CIFAR-10 stand-in (`data.source='synthetic'`, `crimp_jax.data.synthetic`),
so they run on a fresh clone with no dataset. Only tests that need real pixels use the offline
npz (the `cifar10` fixture, `needs_data`) and skip when `CRIMP_DATA_DIR` does not point at it:
decoding and caching the JPEG archive (`tests/test_data.py`) and learning above chance on real
images (`tests/test_train.py::test_learns_above_chance_on_real_cifar10`). CI's `.ci/run` sets
`CRIMP_DATA_DIR`, so CI runs those too.
"""

import os
from pathlib import Path

import pytest


def data_available() -> bool:
    d = os.environ.get("CRIMP_DATA_DIR")
    return bool(d) and (Path(d) / "cifar10_jpeg_q75.npz").is_file()


needs_data = pytest.mark.skipif(not data_available(),
                                reason="needs real CIFAR-10 pixels: set CRIMP_DATA_DIR to the "
                                       "folder holding cifar10_jpeg_q75.npz")


@pytest.fixture(scope="session")
def cifar10():
    if not data_available():
        pytest.skip("needs real CIFAR-10 pixels: set CRIMP_DATA_DIR")
    from crimp_jax.data import load_cifar10
    return load_cifar10()


def tiny_config(arg: str = "tiny", **overrides):
    """quickstart.py:tiny on synthetic data, quiet; overrides {'block.key': value}."""
    from experiments.configs import quickstart
    c = quickstart.get_config(arg)
    with c.unlocked():
        c.data.source = "synthetic"
        c.train.quiet = True
        for dotted, value in overrides.items():
            node = c
            *parents, key = dotted.split(".")
            for p in parents:
                node = getattr(node, p)
            setattr(node, key, value)
    return c
