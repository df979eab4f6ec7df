"""Integer-only deployment: converter, artifact file, integer engine, engine benchmarks."""

from crimp_jax.integer.artifact import Artifact, load_artifact, save_artifact
from crimp_jax.integer.bench import compare_engine, engine_throughput
from crimp_jax.integer.convert import convert, signed_width
from crimp_jax.integer.engine import (
           engine_apply,
           make_engine,
           rounding_shift,
           run_engine,
)

__all__ = ["Artifact", "load_artifact", "save_artifact", "compare_engine", "engine_throughput",
           "convert", "signed_width", "engine_apply", "make_engine", "rounding_shift",
           "run_engine"]
