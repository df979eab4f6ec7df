"""crimp_jax: compact, integer-only and reliable DNN inference on crossbar IMP accelerators (CRIMP)."""

__version__ = "0.1.0"
