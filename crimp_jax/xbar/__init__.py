"""Crossbar view of layer kernels: the one mapping every CRIMP component goes through."""

from crimp_jax.xbar.config import (
                                   XbarSpec,
                                   check_weight_bits,
                                   default_xbar_config,
                                   layer_bits,
                                   num_slices,
                                   polarity_copies,
                                   xbar_spec,
)
from crimp_jax.xbar.view import (
                                   TileGeometry,
                                   from_crossbar,
                                   kernel_to_matrix,
                                   matrix_to_kernel,
                                   tile_geometry,
                                   to_crossbar,
)

__all__ = [
    "XbarSpec", "check_weight_bits", "default_xbar_config", "layer_bits", "num_slices",
    "polarity_copies", "xbar_spec",
    "TileGeometry", "from_crossbar", "kernel_to_matrix", "matrix_to_kernel", "tile_geometry",
    "to_crossbar",
]
