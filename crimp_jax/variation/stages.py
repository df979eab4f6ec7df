"""The device model as an ordered list of small pure stages over one cell state.

A programmed layer's cells are a `Cells` state, in units of dG (`config.py`), with cell axes
(slice, polarity, row_tile, xrow, col) (`device.py`). Starting from the intended levels
(raw = levels, mult = 1, every cell working), each `Stage` of `STAGES`, in order, maps the
state to the next:

  g_min             finite on/off ratio: every cell conducts G_min = c more (c = L / (r - 1))
  write_variation   log-normal G * e^(sigma z) or Gaussian max(G + sigma (c + L) p(x) z, 0)
                    per cell, p the state-dependent std (`prog_poly`, presets.py)
  stuck_at          SA0 cells read G_max = c + L, SA1 cells G_min = c; they ignore the write
  drift             G(t) = G(t0) (t / t0)^(-nu) of working cells, nu per cell (its
                    statistics a function of the level with `drift_nu_log`)
  ir_drop           wire resistance: each crossbar's cells become their effective
                    conductances (`xbar/irdrop.py`, exact by superposition up to the solver's
                    `ir_drop_order` sweeps, or its closed form, `ir_drop_model`)
  compensation      per-column gains from the chip's all-ones read *at read time* (after
                    drift, through the wires: the sum of a column's effective conductances is
                    its all-ones current), rounded to shift-and-add forms (`compensate.py`);
                    corrective
  read_noise        (1 + read_noise z) per cell and per read (drawn from the read key)

`raw` is the conductance, `mult` the factor a working cell's level part was multiplied by (the
straight-through ratio, `perturb.py`), `ok` False for stuck cells. Each stage reads its own
`variation` fields and is active only when they make it act, so whether a chip is ideal is
derived from this list (`chip_is_ideal`). Adding a non-ideality is one stage function, its
config fields (`config.py`) and its test.

Drift defaults (`config.py`): nu_mean = nu_std = 0 (off; RRAM programmed with write-verify is
commonly modelled drift-free). The PCM-like values the results use, nu ~ N(0.05, 0.02^2) with
t0 = 20 s, are at the low end of IBM aihwkit's PCMLikeNoiseModel (mean 0.049..0.1, std
0.008..0.045 by conductance, t0 = 20 s; after Nandakumar et al., ICECS 2019). Negative draws
are clipped to 0 (a cell does not grow).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from crimp_jax.variation.compensate import column_gains

_THETA, _FAULT, _READ, _DRIFT = 0, 1, 2, 3  # fold_in tags of the per-layer random streams


class Cells(NamedTuple):
    """One layer's cells on one chip (axes (slice, polarity, row_tile, xrow, col))."""

    levels: jnp.ndarray  # intended levels (float32 integers)
    raw: jnp.ndarray  # conductance in units of dG
    mult: jnp.ndarray  # multiplicative factor of a working cell's level part
    ok: jnp.ndarray  # bool: not stuck


@dataclasses.dataclass(frozen=True, eq=False)
class Draw:
    """What stages read besides the cells: the chip's layer key, the settings and the traced
    knobs (`crimp_jax.variation.knobs`)."""

    key: object
    vspec: object  # VariationSpec
    c: float  # G_min in units of dG (0 for an ideal on/off ratio)
    lmax: int  # top level L
    prog: jnp.ndarray  # (1, 1, row_tile, xrow, col) programmed cells
    knobs: Mapping = dataclasses.field(default_factory=dict)  # traced overrides (`knobs.py`)
    read_key: object = None
    xbar_cols: int = 0  # columns of one physical crossbar (its row wires' length)

    def value(self, name: str):
        """The setting `name`: its traced knob if the sweep passes one, else the config's
        `variation.<name>`."""
        return self.knobs[name] if name in self.knobs else getattr(self.vspec, name)


def draw(sampler, key, shape):
    """A sampler drawn flat and reshaped: same values, and with the (default) partitionable
    threefry a flat draw compiles in a fraction of the time of a 6-D one on CPU."""
    return sampler(key, (math.prod(shape),), jnp.float32).reshape(shape)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of the device model: `apply(cells, draw) -> cells` when `active(vspec)` or a
    traced knob overrides one of its `fields` (the `variation` config fields it reads, through
    `Draw.value` where sweepable); `corrective`: compensation, not a non-ideality; `random`: it draws from the chip's
    keys, so chips differ."""

    name: str
    fields: tuple
    active: Callable
    apply: Callable
    corrective: bool = False
    random: bool = True  # draws from the chip's keys (False: the same on every chip)


def _g_min(cells: Cells, d: Draw) -> Cells:
    return cells._replace(raw=cells.raw + d.c)


def _write_variation(cells: Cells, d: Draw) -> Cells:
    z = draw(jax.random.normal, jax.random.fold_in(d.key, _THETA), cells.raw.shape)
    if d.vspec.kind == "lognormal":
        mult = jnp.exp(d.value("sigma") * z)
        return cells._replace(raw=cells.raw * mult, mult=cells.mult * mult)
    # additive: clipped at zero conductance (a cell does not conduct negatively; CrossSim too)
    std = (d.c + d.lmax) * prog_std(d.vspec.prog_poly, _target(cells, d))  # state-dependent
    return cells._replace(raw=jnp.maximum(cells.raw + d.value("sigma") * std * z, 0.0))


def _target(cells: Cells, d: Draw):
    """Each cell's programmed target conductance / G_max: (c + level) / (c + L)."""
    return (cells.levels + d.c) / (d.c + d.lmax)


def prog_std(poly, x):
    """Programming noise std relative to G_max at target conductance x = G_T / G_max:
    max(p0 + p1 x + ..., 0) (`variation.prog_poly`)."""
    if len(poly) == 1:
        return jnp.full_like(x, max(poly[0], 0.0))
    return jnp.maximum(jnp.polyval(jnp.asarray(poly[::-1], jnp.float32), x), 0.0)


def _stuck_at(cells: Cells, d: Draw) -> Cells:
    u = draw(jax.random.uniform, jax.random.fold_in(d.key, _FAULT), cells.raw.shape)
    r0, r1 = d.value("sa0_rate"), d.value("sa1_rate")
    sa0 = u < r0
    sa1 = (u >= r0) & (u < r0 + r1)
    raw = jnp.where(sa0, d.c + d.lmax, jnp.where(sa1, d.c, cells.raw))
    return cells._replace(raw=raw, ok=cells.ok & ~(sa0 | sa1))


def drift_exponents(key, vspec, shape, x=None):
    """Per-cell drift exponents nu = max(mu + s z, 0) of one layer (its drift stream): mu, s
    the config's constants, or with a state-dependent law (`variation.drift_nu_log`) functions
    of x = the cells' target conductance / G_max (an array of `shape`)."""
    z = draw(jax.random.normal, jax.random.fold_in(key, _DRIFT), shape)
    a, b = vspec.drift_nu_log
    lo_m, hi_m, lo_s, hi_s = vspec.drift_nu_clip
    log_x = 0.0 if x is None or (a == 0 and b == 0) else jnp.log(jnp.maximum(x, 1e-7))
    mu = jnp.clip(vspec.drift_nu_mean + a * log_x, lo_m, hi_m)
    s = jnp.clip(vspec.drift_nu_std + b * log_x, lo_s, hi_s)
    return jnp.maximum(mu + s * z, 0.0)


def _drift(cells: Cells, d: Draw) -> Cells:
    nu = drift_exponents(d.key, d.vspec, cells.raw.shape, _target(cells, d))
    ratio = jnp.asarray(d.value("read_time"), jnp.float32) / d.vspec.drift_t0
    factor = jnp.where(cells.ok, jnp.power(ratio, -nu), 1.0)
    return cells._replace(raw=cells.raw * factor, mult=cells.mult * factor)


def _compensation(cells: Cells, d: Draw) -> Cells:
    intended = jnp.sum((d.c + cells.levels) * d.prog, axis=-2, keepdims=True)  # all-ones read
    measured = jnp.sum(cells.raw * d.prog, axis=-2, keepdims=True)
    gain = column_gains(intended, measured, d.vspec.comp_form, d.vspec.comp_m_max)
    return cells._replace(raw=cells.raw * gain, mult=cells.mult * gain)


def _read_noise(cells: Cells, d: Draw) -> Cells:
    rkey = jax.random.fold_in(d.key, _READ) if d.read_key is None else d.read_key
    noise = 1.0 + d.vspec.read_noise * draw(jax.random.normal, rkey, cells.raw.shape)
    return cells._replace(raw=cells.raw * noise, mult=cells.mult * noise)


def _ir_drop(cells: Cells, d: Draw) -> Cells:
    """Each physical crossbar's cells replaced by their effective conductances under wire
    resistance (`crimp_jax.xbar.irdrop`): row tiles, slices and polarities are crossbars of
    `xrow` rows; the columns are cut into crossbars of `xbar.cols`."""
    from crimp_jax.xbar.irdrop import closed_form_conductances, effective_conductances
    s, p, t, rows, cols = cells.raw.shape
    per = d.xbar_cols or cols
    n = -(-cols // per)
    g = cells.raw * d.prog  # an unprogrammed cell conducts nothing
    g = jnp.pad(g, ((0, 0),) * 4 + ((0, n * per - cols),))
    g = jnp.moveaxis(g.reshape(s, p, t, rows, n, per), 4, 3)  # (s, p, t, n, rows, per)
    r = d.value("wire_ratio") / (d.c + d.lmax)  # segment resistance in units of 1 / dG
    if d.vspec.ir_drop_model == "closed_form":
        geff = closed_form_conductances(g, r)
    else:
        geff = effective_conductances(g, r, d.vspec.ir_drop_order)
    geff = jnp.moveaxis(geff, 3, 4).reshape(s, p, t, rows, n * per)[..., :cols]
    ratio = jnp.where(cells.raw > 0, geff / jnp.where(cells.raw > 0, cells.raw, 1.0), 1.0)
    return cells._replace(raw=geff + d.c * (1.0 - d.prog), mult=cells.mult * ratio)


STAGES = (
    Stage("g_min", ("on_off_ratio",), lambda v: v.on_off_ratio != 0, _g_min, random=False),
    Stage("write_variation", ("sigma", "kind", "mode", "prog_poly"), lambda v: v.sigma > 0,
          _write_variation),
    Stage("stuck_at", ("sa0_rate", "sa1_rate"), lambda v: v.sa0_rate > 0 or v.sa1_rate > 0,
          _stuck_at),
    Stage("drift", ("drift_nu_mean", "drift_nu_std", "drift_nu_log", "drift_nu_clip",
                    "drift_t0", "read_time"),
          lambda v: v.has_drift and v.read_time != v.drift_t0, _drift),
    Stage("ir_drop", ("wire_ratio", "ir_drop_model", "ir_drop_order"),
          lambda v: v.wire_ratio > 0, _ir_drop, random=False),
    Stage("compensation", ("compensation", "comp_form", "comp_m_max"),
          lambda v: v.compensation, _compensation, corrective=True, random=False),
    Stage("read_noise", ("read_noise",), lambda v: v.read_noise > 0, _read_noise),
)


def active_stages(vspec, knobs=frozenset()) -> tuple:
    """The stages that act on a chip of `vspec` with traced `knobs` (names): a stage acts when
    its own fields make it act, or when a knob overrides one of its fields (its value is only
    known when traced). None act if no non-ideality does (compensation alone changes nothing)."""
    knobs = frozenset(knobs)
    stages = tuple(s for s in STAGES if s.active(vspec) or knobs & set(s.fields))
    if all(s.corrective for s in stages):
        return ()
    return stages


def chip_is_ideal(vspec, knobs=frozenset()) -> bool:
    """True when no non-ideality stage acts: every chip reads the intended levels exactly."""
    return not active_stages(vspec, knobs)


def chips_identical(vspec, knobs=frozenset()) -> bool:
    """True when no acting stage draws at random: every chip of `vspec` is the same chip
    (ideal, or only deterministic non-idealities: a finite on/off ratio, IR drop)."""
    return not any(s.random for s in active_stages(vspec, knobs))


def run_stages(levels, d: Draw, stages: Optional[tuple] = None) -> Cells:
    """The cell state after every active stage (`active_stages(d.vspec, d.knobs)`), starting
    from the intended `levels`."""
    cells = Cells(levels, levels, jnp.ones_like(levels), jnp.ones(levels.shape, bool))
    for stage in active_stages(d.vspec, d.knobs) if stages is None else stages:
        cells = stage.apply(cells, d)
    return cells
