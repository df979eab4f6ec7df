"""Crossbar view of layer kernels: the one mapping every CRIMP component goes through."""

from crimp_jax.xbar.config import XbarSpec, default_xbar_config, num_slices, polarity_copies, xbar_spec
from crimp_jax.xbar.view import (
    TileGeometry,
    from_crossbar,
    kernel_to_matrix,
    matrix_to_kernel,
    tile_geometry,
    to_crossbar,
)

__all__ = [
    "XbarSpec", "default_xbar_config", "num_slices", "polarity_copies", "xbar_spec",
    "TileGeometry", "from_crossbar", "kernel_to_matrix", "matrix_to_kernel", "tile_geometry",
    "to_crossbar",
]
