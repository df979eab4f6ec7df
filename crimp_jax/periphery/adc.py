"""ADC and DAC numerics of the analog periphery (the `adc` and `dac` config blocks).

AQT's numerics pattern: the converters' settings as validated dataclasses (`AdcSpec`,
`DacSpec`) and their arithmetic as small pure functions used by the float (fake-quantized,
Monte Carlo) and int32 (integer engine) products alike: `adc_range` (codes), `adc_step_log2`
(the power-of-two step covering a full scale), `adc_read` (one conversion: round ties to even,
clip; with per-ADC gain and offset errors, `adc_errors`), `exact_pow2`. How they compose into
a layer's product: `crimp_jax.periphery.product`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from crimp_jax.utils.blocks import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    parse_block,
)

READS = ("polarity", "differential")
FULL_SCALE_REFS = ("max", "calibrated")
FULL_SCALE_PER = ("layer", "slice")
MAX_ADC_BITS = 16
MAX_DAC_BITS = 16
MAX_GAIN_STD = 0.5
MAX_OFFSET_STD = 8.0
_MAX_STEP_LOG2 = 48  # ADC steps searched up to 2^48 (far above any partial sum)


@dataclasses.dataclass(frozen=True)
class AdcSpec:
    """Column ADCs (the `adc` block).

    Attributes:
      bits: ADC resolution, 0..16; 0: ideal ADCs (no quantization of partial sums; today's
        one-matmul path, bit for bit). 'differential' reads need >= 2 (a sign bit).
      full_scale: the ADC full scale as a fraction of the reference `full_scale_ref`, in
        (0, 1]; smaller values clip for a finer step.
      read: 'polarity' (one unsigned ADC read per polarity array) or 'differential' (one
        signed read of the two arrays' current difference).
      full_scale_ref: 'max' (the largest partial sum an ideal tile can produce: rows x
        (2^dac.bits - 1) x top level; with full_scale 1 an ideal cell never clips) or
        'calibrated' (per layer, the calib_quantile quantile of |partial sum| over every ADC
        read of calib_images training images on the ideal chip).
      calib_quantile: 'calibrated' only: the quantile of the observed |partial sums| taken as
        the reference, in (0, 1]; 1.0 is the largest observed read (no calibration read clips);
        below 1, over at most 4M reads drawn uniformly (`product.read_reference`).
      calib_images: 'calibrated' only: training images of the calibration pass (>= 1; a
        seeded random sample of the training split, `crimp_jax.data.calibration_sample`).
      full_scale_per: 'layer' (one full scale for every ADC of a layer) or 'slice' (with
        full_scale_ref='calibrated': one reference per weight slice, the calib_quantile of that
        slice's reads, so a slice whose sums stay small gets a finer step).
      g_min_in_range: with a finite on/off ratio (variation.on_off_ratio), polarity and offset
        reads: True lets every programmed cell's G_min current reach the ADC (it takes ADC
        range: the 'max' reference grows to rows x (2^dac.bits - 1) x (L + G_min), a
        calibration sees it) and subtracts its nominal value digitally after the ADC (G_min x
        the input's sum over programmed rows); False (default) removes it before the ADC (an
        ideal reference current). A differential read cancels it in the analog difference.
        The integer engine models cells without G_min either way.
      gain_std, offset_std: per-ADC conversion errors, drawn per chip: code =
        clip(round(ps * (1 + gain_std z1) / 2^a + offset_std z2), lo, hi), z1, z2 ~ N(0, 1);
        gain relative (0..0.5), offset in LSB (0..8). One ADC per row tile, slice, polarity
        read and group of `cost.adc_columns` columns of one crossbar: the columns that share
        an ADC share its errors (`column_adcs`). 0, 0 (default): ideal conversions. Analog
        chips only (Monte Carlo, ADC-aware training); the integer engine converts ideally.
    """

    bits: int = 0
    full_scale: float = 1.0
    read: str = "polarity"
    full_scale_ref: str = "max"
    calib_quantile: float = 1.0
    calib_images: int = 128
    full_scale_per: str = "layer"
    g_min_in_range: bool = False
    gain_std: float = 0.0
    offset_std: float = 0.0

    def __post_init__(self):
        check_int("adc.bits", self.bits, 0, MAX_ADC_BITS)
        check_float("adc.full_scale", self.full_scale, 0.0, 1.0, lo_open=True)
        check_choice("adc.read", self.read, READS)
        check_choice("adc.full_scale_ref", self.full_scale_ref, FULL_SCALE_REFS)
        check_float("adc.calib_quantile", self.calib_quantile, 0.0, 1.0, lo_open=True)
        check_int("adc.calib_images", self.calib_images, 1)
        check_choice("adc.full_scale_per", self.full_scale_per, FULL_SCALE_PER)
        if self.full_scale_per == "slice" and self.full_scale_ref != "calibrated":
            raise ConfigError("adc.full_scale_per='slice' calibrates one reference per slice: "
                              f"set adc.full_scale_ref='calibrated' (now "
                              f"{self.full_scale_ref!r}; the 'max' reference is the same for "
                              "every slice)")
        check_bool("adc.g_min_in_range", self.g_min_in_range)
        check_float("adc.gain_std", self.gain_std, 0.0, MAX_GAIN_STD)
        check_float("adc.offset_std", self.offset_std, 0.0, MAX_OFFSET_STD)
        if self.read == "differential" and self.bits == 1:
            raise ConfigError("adc.bits=1 with adc.read='differential': a signed ADC needs >= 2 "
                              "bits (a sign bit); use bits >= 2 or read='polarity'")

    @property
    def ideal(self) -> bool:
        return self.bits == 0

    @property
    def has_errors(self) -> bool:
        """Finite ADCs with per-ADC gain or offset errors (drawn per chip)."""
        return not self.ideal and (self.gain_std > 0 or self.offset_std > 0)


@dataclasses.dataclass(frozen=True)
class DacSpec:
    """Row DACs (the `dac` block).

    Attributes:
      bits: bits applied per input cycle, 1..16 (1 = bit-serial, ISAAC); at most the
        activation bits of every crossbar layer's input. Used when adc.bits > 0.
    """

    bits: int = 1

    def __post_init__(self):
        check_int("dac.bits", self.bits, 1, MAX_DAC_BITS)


def adc_spec(cfg) -> AdcSpec:
    return parse_block(cfg, AdcSpec, "adc")


def dac_spec(cfg) -> DacSpec:
    return parse_block(cfg, DacSpec, "dac")


def exact_pow2(e):
    """2^e as float32 for integral e (python int or traced), exact (`jnp.exp2` is not on every
    backend)."""
    return jnp.ldexp(jnp.float32(1.0), jnp.asarray(e).astype(jnp.int32))


def adc_range(bits, signed: bool):
    """(lo, hi) codes of a `bits`-bit ADC (python ints, or float arrays for traced bits)."""
    if isinstance(bits, int):
        hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    else:
        b = jnp.asarray(bits, jnp.float32)
        hi = exact_pow2(b - 1.0 if signed else b) - 1.0
    return -hi if signed else 0 * hi, hi


def adc_step_log2(full_scale_levels: float, bits, signed: bool):
    """a: the smallest a >= 0 with hi * 2^a >= FS (hi: the top code). Exact for traced bits too
    (a count over candidate steps, no logarithm)."""
    _, hi = adc_range(bits, signed)
    if isinstance(bits, int):
        a = 0
        while hi * 2 ** a < full_scale_levels:
            a += 1
        return a
    steps = exact_pow2(jnp.arange(_MAX_STEP_LOG2))
    return jnp.sum(hi * steps < full_scale_levels).astype(jnp.float32)


def column_adcs(columns: int, xbar_cols: int, adc_columns: int) -> np.ndarray:
    """The ADC of each of a layer's `columns` columns (int array, 0..n_adcs - 1): the columns
    fill crossbars of `xbar_cols` columns in order, and inside a crossbar each run of
    `adc_columns` columns shares one ADC (`cost.adc_columns`; ISAAC: 128, one per crossbar);
    0: one ADC per column."""
    c = np.arange(columns)
    if adc_columns <= 0:
        return c
    per_crossbar = -(-xbar_cols // adc_columns)
    return (c // xbar_cols) * per_crossbar + (c % xbar_cols) // min(adc_columns, xbar_cols)


def adc_errors(key, tiles: int, arrays: int, column_adc, gain_std, offset_std):
    """One chip's ADC errors (gain, offset), each (tiles, arrays x columns) in the order of a row
    tile's reads (array-major; an array is one slice and polarity read): one draw per ADC (row
    tile, array, ADC of `column_adc`, `column_adcs`), shared by the columns it serves. gain
    1 + gain_std z1, offset offset_std z2 in LSB (`AdcSpec.gain_std`, `offset_std`; may be
    traced)."""
    column_adc = np.asarray(column_adc)
    z = jax.random.normal(key, (2, tiles, arrays, int(column_adc.max()) + 1), jnp.float32)
    z = z[..., column_adc].reshape(2, tiles, arrays * column_adc.size)
    return 1.0 + gain_std * z[0], offset_std * z[1]


def adc_read(ps, a, lo, hi, error=None):
    """code * 2^a with code = clip(round(ps / 2^a), lo, hi), ties to even: one ADC conversion.

    Ties to even, not half up: an ideal cell's partial sum is an integer, so with a step of 2
    half the reads are exact ties, and rounding them all up biased every layer upwards (measured
    on the quickstart model, 4-bit DACs, 13-bit differential ADCs, sigma 0: 36.80% half up
    against 46.00% ideal). int32 `ps` with a python int `a`: a rounding arithmetic shift, the
    tie correction and a clip (integer only). Float `ps`: the same values (exact: ps is an
    integer for ideal cells, 2^a a power of two). `error`: optional (gain, offset) of each
    ADC (float only, `adc_errors`): code = clip(round(ps * gain / 2^a + offset), lo, hi)."""
    if error is None and jnp.issubdtype(ps.dtype, jnp.integer):
        if a == 0:
            return jnp.clip(ps, lo, hi)
        half = 1 << (a - 1)
        code = jnp.right_shift(ps + half, a)
        tie = (ps & ((1 << a) - 1)) == half
        code = code - (tie & ((code & 1) == 1)).astype(code.dtype)
        return jnp.left_shift(jnp.clip(code, lo, hi), a)
    step = exact_pow2(a)
    codes = ps / step if error is None else ps * error[0] / step + error[1]
    return jnp.clip(jnp.round(codes), lo, hi) * step
