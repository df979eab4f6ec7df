"""Shared test fixtures: the offline CIFAR-10 copy and tiny configs."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "CRIMP_DATA_DIR" not in os.environ and (SHARED_DATA / "cifar10_jpeg_q75.npz").is_file():
    os.environ["CRIMP_DATA_DIR"] = str(SHARED_DATA)


def data_available() -> bool:
    d = os.environ.get("CRIMP_DATA_DIR")
    return bool(d) and (Path(d) / "cifar10_jpeg_q75.npz").is_file()


needs_data = pytest.mark.skipif(not data_available(),
                                reason="CIFAR-10 npz not found (set CRIMP_DATA_DIR)")


@pytest.fixture(scope="session")
def cifar10():
    if not data_available():
        pytest.skip("CIFAR-10 npz not found (set CRIMP_DATA_DIR)")
    from crimp_jax.data import load_cifar10
    return load_cifar10()
