"""Shared test fixtures and configs.

End-to-end tests (the whole chain, resume, trace-once, the CLI, the sweep and launch scripts)
run on the synthetic CIFAR-10 stand-in (`data.source='synthetic'`, `crimp_jax.data.synthetic`),
so they run on a fresh clone with no dataset. Only tests that need real pixels use the offline
npz (the `cifar10` fixture, `needs_data`) and skip when `CRIMP_DATA_DIR` does not point at it:
decoding and caching the JPEG archive (`tests/test_data.py`) and learning above chance on real
images (`tests/test_train.py::test_learns_above_chance_on_real_cifar10`). CI's `.ci/run` sets
`CRIMP_DATA_DIR`, so CI runs those too.

Speed (the suite is compile-bound; 2026-12-06, 2-core CPU with the dataset: 944 s before these
measures and the cheaper tests of issue 20, 414 s after, with issue 21's tests added):
- `pyproject.toml` runs one pytest-xdist worker per core (`pytest_xdist_auto_num_workers` below):
  XLA compiles on one thread, so a second worker uses the second core;
- the session, its workers and the scripts the tests run in subprocesses share one XLA
  persistent compilation cache (a temporary folder made by the first process, removed at its
  exit): many tests compile the same tiny programs;
- `JAX_DISABLE_MOST_OPTIMIZATIONS=1` (as the flax examples' tests run): a program compiled to
  run a few steps costs less unoptimised (the narrow ResNet-18 whole chain: 62 s -> 42 s).
  Every exactness test (integer engine = fake quant, resume = uninterrupted) holds either way.
Trace counts are unaffected.
- A test that runs a model op by op (outside `jax.jit`) compiles every primitive on its own:
  the tests jit such forwards (2026-12-07, clean-clone CI on 2 cores: 452 s -> 408 s, with the
  folded-BN resume test merged into the model-selection test and the ResNet-20 crossbar engine
  case on XLA:CPU's integer convolutions).
- Whole chains are the costly tests (15-75 s each, mostly compiling): one whole chain per
  thing it proves (2026-12-07: the ADC/DAC/drift sweeps merged into the whole-chain test and
  model selection resumed from one cut, 487 s -> 416 s with nothing else running).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Tests compile many small programs once each: XLA's most expensive optimisations cost more
# than they save there (the flax examples' tests do the same). Subprocesses inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several workers, one GPU

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


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a whole-chain test (tens of seconds on 2 CPU "
                                       "cores); `-m 'not slow'` leaves them out")


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject.toml): one worker per core, at most 8 (each holds its own compiled
    programs)."""
    return max(1, min(8, os.cpu_count() or 1))


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


def cli_in_process(*args, parse_only: bool = False):
    """`python -m experiments.run ARGS` in this process (its flag parsing and `main`, as
    `app.run` calls them): (exit status, stderr), or with `parse_only` the parsed config. An
    exception the CLI does not turn into an `error:` line propagates and fails the test, as a
    traceback would. Override flags (`--config.a.b`) that ml_collections defined in an earlier
    call are removed first, as a fresh process would not have them."""
    import contextlib
    import io
    import sys

    from absl import flags

    from experiments import run as run_mod

    def reset():
        flags.FLAGS.unparse_flags()
        for name in [n for n in flags.FLAGS if n.startswith("config.")]:
            delattr(flags.FLAGS, name)

    argv, saved = ["experiments/run.py", *args], sys.argv
    reset()
    sys.argv = argv  # ml_collections reads the config overrides from sys.argv
    err, code = io.StringIO(), 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rest = run_mod.parse_flags(argv)
            if parse_only:
                return flags.FLAGS.config
            run_mod.main(rest)
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = saved
        reset()
    return code, err.getvalue()
