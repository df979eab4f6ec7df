"""The single `xbar` config block shared by pruning, variation and the cost model.

Every component that needs crossbar geometry reads it from one `XbarSpec`, built from the
config's `xbar` block by `xbar_spec`, so pruning and cost can never disagree about a tile.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import ml_collections

from crimp_jax.utils.blocks import check_bool, check_int, default_block, parse_block

MAX_SIDE = 4096  # rows or columns of one crossbar


@dataclasses.dataclass(frozen=True)
class XbarSpec:
    """Crossbar hardware geometry and cells.

    The weight bit width is not a crossbar property: it is each layer's quantization bit width
    (`quant` block, resolved per layer by `crimp_jax.quant.make_plan`), and every function
    that slices weights into cells takes it as an argument, so the device model, the pruning
    report and the cost model slice a layer the same way.

    Attributes:
      rows: physical rows (word lines) of one crossbar, R (1..4096).
      cols: physical columns (bit lines) of one crossbar, C (1..4096).
      bits_per_cell: bits stored per RRAM cell (slice width, 1..8).
      differential: store each weight as a positive and a negative array (two polarities).
      channel_aligned: use only floor(R / k^2) * k^2 rows per tile so that the k*k rows of one
        input channel never straddle two crossbars.
    """

    rows: int = 128
    cols: int = 128
    bits_per_cell: int = 2
    differential: bool = True
    channel_aligned: bool = False

    def __post_init__(self):
        check_int("xbar.rows", self.rows, 1, MAX_SIDE)
        check_int("xbar.cols", self.cols, 1, MAX_SIDE)
        check_int("xbar.bits_per_cell", self.bits_per_cell, 1, 8)
        check_bool("xbar.differential", self.differential)
        check_bool("xbar.channel_aligned", self.channel_aligned)


def default_xbar_config() -> ml_collections.ConfigDict:
    """The `xbar` block every experiment config embeds (128x128 arrays of 2-bit cells)."""
    return default_block(XbarSpec)


def xbar_spec(cfg) -> XbarSpec:
    """Builds a validated `XbarSpec` from a config block (ConfigDict, dict or XbarSpec)."""
    return parse_block(cfg, XbarSpec, "xbar")



def check_weight_bits(weight_bits) -> int:
    """A layer's signed weight bit width (sign included), 2..16."""
    return check_int("weight_bits", weight_bits, 2, 16)


def layer_bits(bits, path: str) -> int:
    """The weight bits of layer `path` from a {path: bits} mapping (a quantization plan's
    `wbits`) or one int for every layer."""
    if isinstance(bits, Mapping):
        if path not in bits:
            raise ValueError(f"no weight bits for layer {path!r}; bits are given for "
                             f"{sorted(bits)}")
        return check_weight_bits(bits[path])
    return check_weight_bits(bits)


def num_slices(spec: XbarSpec, weight_bits: int) -> int:
    """Cells (slices) one `weight_bits`-bit weight magnitude occupies in one polarity array.

    Differential storage keeps the sign in the choice of array, so the magnitude has
    weight_bits - 1 bits; offset (non-differential) storage keeps all weight_bits bits.
    8-bit weights on 2-bit cells, differential: ceil(7 / 2) = 4 slices; 4-bit weights: 2.
    """
    check_weight_bits(weight_bits)
    magnitude_bits = weight_bits - 1 if spec.differential else weight_bits
    return math.ceil(magnitude_bits / spec.bits_per_cell)


def polarity_copies(spec: XbarSpec) -> int:
    """Number of physical arrays per logical tile and slice: 2 for a differential pair, else 1."""
    return 2 if spec.differential else 1
