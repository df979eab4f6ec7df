"""The analog periphery of a crossbar: row DACs, column ADCs, and the crossbar-faithful product.

A crossbar layer computes y[m, col] = sum_row x[m, row] * W[row, col] with W stored in cells
(`xbar.cells`: slices s of `bits_per_cell` bits with place value 2^(s*bpc), two polarity arrays
or one offset array) on row tiles of `rows_per_tile` rows (`xbar.view`). The periphery:

  DAC     an unsigned integer input x of `in_bits` bits is applied in K = ceil(in_bits / d)
          input cycles of d = `dac.bits` bits (d = 1: bit-serial, ISAAC-style):
          x = sum_k 2^(k*d) x_k, x_k in [0, 2^d - 1]. A signed input (the centred pixels of the
          first layer) is applied as two unsigned passes, its positive and negative parts.
  ADC     per cycle, row tile, slice, polarity and column, the analog partial sum
          ps = sum_{xrow} x_k * g (g: the cell's read-out in level units; an integer for an
          ideal cell) is digitised by a `adc.bits`-bit ADC with a power-of-two step 2^a:
          code = clip(round(ps / 2^a), lo, hi) (ties to even), read back as code * 2^a. The step is the
          smallest 2^a (a >= 0) whose top code covers the full scale FS = adc.full_scale * REF.
          adc.full_scale_ref = 'max': REF = rows * (2^d - 1) * L (rows: the rows a tile drives,
          min(rows_per_tile, layer rows); L: the top cell level), so full_scale = 1 never clips
          an ideal cell and an ADC with enough bits (2^b - 1 >= FS) is lossless; full_scale < 1
          clips the top of the range for a finer step. 'calibrated': REF is the layer's
          `adc.calib_quantile` quantile of |ps| over all ADC reads of `adc.calib_images`
          training images on the ideal chip (`calibrated_full_scales`; 1.0: the largest read),
          one full scale per layer, so a layer whose sums stay far below the worst case gets
          a finer step (a clip of the reads above the quantile).
          adc.read = 'polarity': each polarity array's column current is read by an unsigned
          ADC (codes [0, 2^b - 1]); 'differential': the difference of the two arrays' currents
          is read by a signed ADC (codes [-(2^(b-1) - 1), 2^(b-1) - 1]).
  S+A     shift-and-add: y = sum_tiles sum_k 2^(k*d) sum_s 2^(s*bpc) (code_+ - code_-) * 2^a
          (offset storage: minus offset * sum_row x over programmed rows, digitally).

With `adc.bits = 0` (ideal ADCs) none of this runs: the layer is one matmul with the effective
kernel (`variation.device`), which equals the product above whenever no ADC rounds or clips.

The same function computes the float (fake-quantized, Monte Carlo) and the int32 (integer engine)
product: with ideal cells every partial sum is an integer, a power-of-two ADC step is a rounding
shift and a clip, and the two agree bit for bit (tests/test_periphery.py). The float path
accumulates in float32, so it is exact while every partial sum and every shifted-and-added
total stays below 2^24 in magnitude (the int32 engine is exact to its 31-bit bounds); beyond
that the float product rounds like any float32 matmul.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from crimp_jax.periphery.adc import (
    AdcSpec,
    DacSpec,
    adc_range,
    adc_read,
    adc_step_log2,
    exact_pow2,
)
from crimp_jax.utils.blocks import ConfigError


@dataclasses.dataclass(frozen=True)
class LayerPeriphery:
    """Static facts of one layer's crossbar-faithful product (hashable, plain Python)."""

    name: str
    in_bits: int  # magnitude bits of the layer input
    signed_input: bool  # the input may be negative (centred pixels): two unsigned passes
    dac_bits: int
    rows: int  # rows one tile drives: min(rows_per_tile, layer rows)
    n_rows: int  # rows of the layer matrix (the last tile drives the remainder)
    lmax: int  # top cell level
    place_log2: tuple  # per slice: log2 of its place value
    differential: bool  # two polarity arrays (else one offset array)
    offset: int  # offset-storage constant (0 for differential)
    read: str
    full_scale: float
    calibrated_ref: object = 0.0  # calibrated reference (levels), per slice a tuple; 0: 'max'
    g_min: float = 0.0  # G_min current per programmed cell that reaches the ADC (level units)

    @property
    def cycles(self) -> int:
        return math.ceil(self.in_bits / self.dac_bits)

    @property
    def signed_adc(self) -> bool:
        return self.differential and self.read == "differential"

    @property
    def reads_per_cycle(self) -> int:
        """ADC reads (matmuls) per cycle and slice: 2 polarity reads or 1 difference read."""
        return 2 if self.differential and not self.signed_adc else 1

    @property
    def max_partial_sum(self) -> int:
        """The largest partial sum an ideal tile can produce: rows x (2^d - 1) x top level (plus
        G_min where it reaches the ADC)."""
        return self.rows * (2 ** self.dac_bits - 1) * (self.lmax + self.g_min if self.g_min
                                                       else self.lmax)

    def full_scale_levels(self) -> float:
        """FS: adc.full_scale x the reference (calibrated, else the ideal tile's largest sum);
        with per-slice references, the largest."""
        return max(self.slice_full_scales())

    def slice_full_scales(self) -> tuple:
        """FS per weight slice (one value repeated unless adc.full_scale_per = 'slice')."""
        ref = self.calibrated_ref
        if isinstance(ref, tuple):
            return tuple(self.full_scale * r for r in ref)
        return (self.full_scale * (ref or self.max_partial_sum),) * len(self.place_log2)

    @property
    def flop_multiple(self) -> int:
        """MACs of this product / MACs of one plain matmul of the layer: input passes (2 for a
        signed input) x input cycles x slices x reads per slice (tiles only split the rows)."""
        return ((2 if self.signed_input else 1) * self.cycles * len(self.place_log2)
                * self.reads_per_cycle)


def layer_periphery(name, geometry, lmax, place_log2, differential, offset, in_bits,
                    signed_input, adc: AdcSpec, dac: DacSpec,
                    calibrated_ref: float = 0.0, g_min: float = 0.0) -> LayerPeriphery:
    """The `LayerPeriphery` of a layer; refuses a DAC wider than the layer's input."""
    if dac.bits > in_bits:
        raise ConfigError(f"dac.bits={dac.bits}: wider than the {in_bits}-bit input of layer "
                          f"{name!r}; expected dac.bits <= {in_bits} (the activation bits)")
    ref = (tuple(float(r) for r in calibrated_ref) if isinstance(calibrated_ref, (tuple, list))
           else float(calibrated_ref))
    return LayerPeriphery(name, int(in_bits), bool(signed_input), dac.bits,
                          min(geometry.rows_per_tile, geometry.n_rows), geometry.n_rows, int(lmax),
                          tuple(int(p) for p in place_log2), bool(differential), int(offset),
                          adc.read, float(adc.full_scale), ref, float(g_min))


def _unsigned_product(x, cells, lp: LayerPeriphery, adc_bits, prog, probe, row_dot,
                      adc_error=None):
    """y (..., C) of unsigned integer-valued layer inputs x on cells (S, P, T, R, C); with
    `probe` (a list) the ADCs are ideal and every read's partial sums are appended to it."""
    integer = jnp.issubdtype(x.dtype, jnp.integer)
    s, p, t, r, c = cells.shape
    if lp.signed_adc:
        cells, p = cells[:, :1] - cells[:, 1:], 1  # the differential current
    sign = [1, -1] if p == 2 else [1]
    rhs = jnp.transpose(cells, (2, 3, 0, 1, 4)).reshape(t, r, s * p * c)  # (T, R, S*P*C)
    leak = lp.g_min > 0  # G_min current through the ADC (adc.g_min_in_range)
    if leak:
        prog_t = prog.astype(rhs.dtype)  # (T, R, C): every programmed cell conducts G_min
        rhs = rhs + lp.g_min * jnp.tile(prog_t, (1, 1, s * p))
    if probe is None:
        lo, hi = adc_range(adc_bits, lp.signed_adc)
        # one step for the layer, or one per slice (adc.full_scale_per = 'slice')
        full_scales = (lp.slice_full_scales() if isinstance(lp.calibrated_ref, tuple)
                       else (lp.full_scale_levels(),))
        steps = [adc_step_log2(fs, adc_bits, lp.signed_adc) for fs in full_scales]
    acc_type = jnp.int32 if integer else jnp.float32
    weights = [sg * 2 ** pl for pl in lp.place_log2 for sg in sign]  # per (slice, polarity)
    base = 2 ** lp.dac_bits
    # row tile i drives layer rows [i*r, min((i+1)*r, n_rows)): a partial last tile drives only
    # its rows (no product over the zero padding)
    tiles = [(i, i * r, min((i + 1) * r, lp.n_rows)) for i in range(t)]

    def cycle(k, acc):
        if integer:
            digit = jnp.right_shift(x, k * lp.dac_bits) & (base - 1)
        else:
            digit = jnp.mod(jnp.floor(x / exact_pow2(k * lp.dac_bits)), base)
        scale = jnp.left_shift(1, k * lp.dac_bits) if integer else exact_pow2(k * lp.dac_bits)
        for i, r0, r1 in tiles:
            ps = row_dot(digit, rhs[i, :r1 - r0], r0, r1)  # (..., S*P*C): one ADC read each
            err = None if adc_error is None else (adc_error[0][i], adc_error[1][i])
            if probe is not None:
                probe.append(ps)
                read = ps
            elif len(steps) == 1:
                read = adc_read(ps, steps[0], lo, hi, err)
            else:  # per-slice full scales: each slice's reads with their own step
                read = jnp.concatenate([adc_read(
                    ps[..., q * c:(q + 1) * c], steps[q // len(sign)], lo, hi,
                    None if err is None else (err[0][q * c:(q + 1) * c],
                                              err[1][q * c:(q + 1) * c]))
                    for q in range(len(weights))], axis=-1)
            if leak:  # the nominal G_min current, subtracted digitally after the ADC
                read = read - jnp.tile(lp.g_min * row_dot(digit, prog_t[i, :r1 - r0], r0, r1),
                                       s * p)
            # shift-and-add, written out per (slice, polarity) so the ADC reads, the tile sum
            # and the recombination are one elementwise pass over the partial sums
            for q, wq in enumerate(weights):
                acc = acc + read[..., q * c:(q + 1) * c] * (wq * scale)
        return acc

    _, r0, r1 = tiles[0]
    out = jax.eval_shape(lambda xx, ww: row_dot(xx, ww, r0, r1), x, rhs[0, :r1 - r0])
    y = jnp.zeros(out.shape[:-1] + (c,), acc_type)
    if probe is None:
        y = jax.lax.fori_loop(0, lp.cycles, cycle, y)
    else:  # a python loop: the partial sums of every cycle leave the loop body
        for k in range(lp.cycles):
            y = cycle(k, y)
    if lp.offset:  # offset storage: the constant offset is subtracted digitally
        prog_rows = prog.reshape(t * r, c)[:lp.n_rows].astype(x.dtype)
        y = y - lp.offset * row_dot(x, prog_rows, 0, lp.n_rows).astype(acc_type)
    return y


def tile_row_dot(x, w_rows, lo: int, hi: int):
    """The default `row_dot` of `crossbar_product` (and a dense layer's): x (M, T, R) row tiles
    of the layer matrix rows (`input_tiles`) or (M, rows); (M, N) = x's rows [lo, hi) times
    w_rows (hi - lo, N)."""
    xm = x.reshape(x.shape[0], -1)[:, lo:hi]
    acc = jnp.int32 if jnp.issubdtype(x.dtype, jnp.integer) else jnp.float32
    return jax.lax.dot_general(xm, w_rows.astype(x.dtype), (((1,), (0,)), ((), ())),
                               preferred_element_type=acc)


def crossbar_product(x, cells, lp: LayerPeriphery, adc_bits, prog=None, probe=None,
                     row_dot=tile_row_dot, adc_error=None):
    """The crossbar-faithful y (..., C) of integer-valued layer inputs `x` and per-cell
    read-outs `cells` (S, P, T, R, C) in level units (see module docstring).

    `row_dot(x, w_rows, lo, hi)` -> (..., N): what the layer rows [lo, hi) that `x` drives
    contribute through w_rows (hi - lo, N); the default, `tile_row_dot`, takes x as (M, T, R)
    row tiles (`input_tiles`); a convolution passes `graph.arith.conv_rows_dot` and its input
    (N, H, W, Cin), so no patches are materialised. DAC digits are taken elementwise of `x`.
    `x` and `cells` both int32 (integer engine: int32 result) or both float32. `adc_bits`: a
    python int, or a traced float scalar (a sweep compiles once). `prog` (T, R, C) 0/1:
    programmed cells, needed for offset storage. `probe`: a list that receives the partial
    sums (..., S*P*C) of every ADC read, read by ideal ADCs (the calibration pass of
    `full_scale_ref='calibrated'`; `adc_bits` is then unused). `adc_error`: optional (gain,
    offset) arrays (T, reads per tile) of the chip's ADCs (`adc_errors`; float only)."""
    if lp.offset and prog is None:
        raise ValueError(f"layer {lp.name!r}: offset storage needs the programmed-cell mask")
    if lp.signed_input:
        zero = jnp.zeros((), x.dtype)
        return (_unsigned_product(jnp.maximum(x, zero), cells, lp, adc_bits, prog, probe,
                                  row_dot, adc_error)
                - _unsigned_product(jnp.maximum(-x, zero), cells, lp, adc_bits, prog, probe,
                                    row_dot, adc_error))
    return _unsigned_product(x, cells, lp, adc_bits, prog, probe, row_dot, adc_error)


QUANTILE_READS = 1 << 22  # reads a quantile below 1 is taken over (`read_reference`)


def read_reference(partial_sums, quantile: float, slices: int = 0,
                   max_reads: int = QUANTILE_READS):
    """The calibrated full-scale reference of one layer: the `quantile` quantile of |ps| over
    all its ADC reads (a list of partial-sum arrays (..., S*P*C); 1.0: the largest, exact), at
    least 1 level; with `slices` = S > 0, one reference per slice, shape (S,). A quantile below
    1 over more than `max_reads` reads is taken over `max_reads` of them drawn uniformly (a
    fixed key): sorting every read of a 1-bit-DAC calibration pass (about 1e9 on the
    quickstart) took many minutes; 4M draws put the 0.999 quantile within about 0.00002 in
    rank."""
    if slices:
        mags = jnp.concatenate([jnp.abs(ps).reshape(-1, slices, ps.shape[-1] // slices)
                                for ps in partial_sums])
        mags = jnp.moveaxis(mags, 1, 0).reshape(slices, -1)
    else:
        mags = jnp.concatenate([jnp.abs(ps).reshape(-1) for ps in partial_sums])
    if quantile >= 1.0:
        ref = jnp.max(mags, axis=-1)
    else:
        if mags.shape[-1] > max_reads:
            pick = jax.random.randint(jax.random.key(0), (max_reads,), 0, mags.shape[-1])
            mags = jnp.take(mags, pick, axis=-1)
        ref = jnp.quantile(mags, quantile, axis=-1)
    return jnp.maximum(ref, 1.0)


def input_tiles(rows, n_row_tiles: int, rows_per_tile: int):
    """(..., n_rows) crossbar-row inputs -> (M, T, R): flattened, zero-padded to whole tiles."""
    m = rows.reshape(-1, rows.shape[-1])
    pad = n_row_tiles * rows_per_tile - m.shape[-1]
    return jnp.pad(m, ((0, 0), (0, pad))).reshape(m.shape[0], n_row_tiles, rows_per_tile)


@dataclasses.dataclass(frozen=True)
class Periphery:
    """What a crossbar-faithful read needs besides the cells: ADCs, DACs, the crossbar, the
    cell mode ('cell': bit-sliced cells; 'weight': one multi-level cell per weight) and, with
    adc.full_scale_ref = 'calibrated', the calibrated references ((layer name, levels) pairs,
    `periphery.reader.calibrate_periphery`)."""

    adc: AdcSpec
    dac: DacSpec
    xbar: object  # XbarSpec
    mode: str = "cell"
    references: tuple = ()
    on_off_ratio: float = 0.0  # variation.on_off_ratio: the cells' G_min (adc.g_min_in_range)
    adc_columns: int = 0  # cost.adc_columns: columns of a crossbar that share one ADC (and its
    # gain/offset errors, `adc.column_adcs`); 0: one ADC per column

    def g_min(self, lmax: int) -> float:
        """G_min in level units that reaches the ADCs: L / (r - 1) with adc.g_min_in_range and
        a finite on/off ratio r, else 0 (also for a differential read of two polarity arrays,
        whose analog difference cancels it)."""
        differential_read = self.xbar.differential and self.adc.read == "differential"
        if not self.adc.g_min_in_range or not self.on_off_ratio or differential_read:
            return 0.0
        return lmax / (self.on_off_ratio - 1.0)

    @property
    def calibrated(self) -> bool:
        """Finite ADCs whose full scale is calibrated per layer."""
        return not self.adc.ideal and self.adc.full_scale_ref == "calibrated"

    def reference(self, name: str) -> float:
        """The calibrated reference of layer `name` (0.0: the 'max' reference)."""
        if not self.calibrated:
            return 0.0
        refs = dict(self.references)
        if name not in refs:
            raise ValueError(f"adc.full_scale_ref='calibrated': no calibrated full scale for "
                             f"layer {name!r} (calibrated: {sorted(refs) or 'none'}); calibrate "
                             "the periphery first (periphery.reader.calibrate_periphery)")
        return refs[name]
