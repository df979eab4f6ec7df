"""The single `xbar` config block shared by pruning, variation and the cost model.

Every component that needs crossbar geometry reads it from one `XbarSpec`, built from the
config's `xbar` block by `xbar_spec`, so pruning and cost can never disagree about a tile.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from crimp_jax.utils.blocks import default_block, parse_block


@dataclasses.dataclass(frozen=True)
class XbarSpec:
    """Crossbar hardware geometry.

    Attributes:
      rows: physical rows (word lines) of one crossbar, R.
      cols: physical columns (bit lines) of one crossbar, C.
      bits_per_cell: bits stored per RRAM cell (slice width).
      weight_bits: signed weight bit width b_w (sign included).
      differential: store each weight as a positive and a negative array (two polarities).
      channel_aligned: use only floor(R / k^2) * k^2 rows per tile so that the k*k rows of one
        input channel never straddle two crossbars.
    """

    rows: int = 128
    cols: int = 128
    bits_per_cell: int = 2
    weight_bits: int = 8
    differential: bool = True
    channel_aligned: bool = False

    def __post_init__(self):
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"xbar.{name}={value!r}: expected a positive integer")
        if not 1 <= self.bits_per_cell <= 8:
            raise ValueError(f"xbar.bits_per_cell={self.bits_per_cell!r}: expected 1..8")
        if not 2 <= self.weight_bits <= 16:
            raise ValueError(f"xbar.weight_bits={self.weight_bits!r}: expected 2..16")


def default_xbar_config() -> ml_collections.ConfigDict:
    """The `xbar` block every experiment config embeds (128x128, 8-bit weights on 2-bit cells)."""
    return default_block(XbarSpec)


def xbar_spec(cfg) -> XbarSpec:
    """Builds a validated `XbarSpec` from a config block (ConfigDict, dict or XbarSpec)."""
    return parse_block(cfg, XbarSpec, "xbar")



def num_slices(spec: XbarSpec) -> int:
    """Cells (slices) one weight magnitude occupies in one polarity array.

    Differential storage keeps the sign in the choice of array, so the magnitude has
    weight_bits - 1 bits; offset (non-differential) storage keeps all weight_bits bits.
    8-bit weights on 2-bit cells, differential: ceil(7 / 2) = 4 slices.
    """
    magnitude_bits = spec.weight_bits - 1 if spec.differential else spec.weight_bits
    return math.ceil(magnitude_bits / spec.bits_per_cell)


def polarity_copies(spec: XbarSpec) -> int:
    """Number of physical arrays per logical tile and slice: 2 for a differential pair, else 1."""
    return 2 if spec.differential else 1
