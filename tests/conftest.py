"""Shared test fixtures and configs.

End-to-end tests (the whole chain, resume, trace-once, the CLI, the sweep and launch scripts)
run on the synthetic CIFAR-10 stand-in (`data.source='synthetic'`, `crimp_jax.data.synthetic`),
so they run on a fresh clone with no dataset. Only tests that need real pixels use the offline
npz (the `cifar10` fixture, `needs_data`) and skip when `CRIMP_DATA_DIR` does not point at it:
decoding and caching the JPEG archive (`tests/test_data.py`) and learning above chance on real
images (`tests/test_train.py::test_learns_above_chance_on_real_cifar10`). CI's `.ci/run` sets
`CRIMP_DATA_DIR`, so CI runs those too.

The session shares one XLA persistent compilation cache (a temporary folder, removed at exit;
also used by the scripts the tests run in subprocesses): many tests compile the same tiny
programs, and the launch-script tests run the same configs several times (a tiny CRIMP run:
39 s without the cache, 13 s with it, 2-core CPU). Trace counts are unaffected.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _xla_cache = tempfile.mkdtemp(prefix="crimp_jax_tests_xla_")
    atexit.register(shutil.rmtree, _xla_cache, ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_xla_cache,
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    import jax  # noqa: E402  (after the environment, in case jax was not imported yet)

    jax.config.update("jax_compilation_cache_dir", _xla_cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


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
