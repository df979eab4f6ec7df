"""The `variation` config block: device non-idealities and self-compensation, validated.

Conductance convention (level units). A cell storing level l in [0, L] (L = 2^bpc - 1, or the
whole magnitude range in 'weight' mode) is written to conductance G(l) = G_min + l * dG. In units
of dG that is c + l with c = G_min/dG = L / (on_off_ratio - 1) (c = 0 for an ideal, infinite
on/off ratio: `on_off_ratio = 0`). The periphery subtracts the nominal c from every programmed
cell it reads, so a variation-free cell reads exactly l; with a finite on/off ratio a level-0 cell
still conducts G_min and its variation leaks into the column sum.

Stuck-at faults follow the convention of the RRAM fault literature (Chen et al., 2015): SA0 =
stuck in the low-resistance state = high conductance G_max (reads L); SA1 = stuck in the
high-resistance state = low conductance G_min (reads 0). Stuck cells ignore the write, so they get
no write variation.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from crimp_jax.utils.blocks import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    default_block,
    parse_block,
)

MODES = ("cell", "weight")
# Physical ranges: a log-normal sigma of 2 already spreads a cell over e^(+-4) (a factor 55 at
# one standard deviation); a read-noise std of 1 is as large as the signal.
MAX_SIGMA = 2.0
MAX_READ_NOISE = 1.0
KINDS = ("lognormal", "gaussian")
COMP_FORMS = ("po2", "po2_pm", "exact")
IR_DROP_MODELS = ("solve", "closed_form")


@dataclasses.dataclass(frozen=True)
class VariationSpec:
    """Device model and self-compensation settings (hashable: a static jit argument).

    Attributes:
      sigma: write variation strength, in [0, 2]. 'lognormal': G * exp(theta), theta ~ N(0, sigma^2);
        'gaussian': max(G + sigma * G_max * z, 0), z ~ N(0, 1) (additive, relative to the top
        level, clipped at zero conductance).
      mode: 'cell': one draw per physical cell (per bit-slice and polarity); 'weight': one draw
        per weight and polarity (the weight is one multi-level cell).
      kind: 'lognormal' or 'gaussian'.
      sa0_rate, sa1_rate: fraction of programmed cells stuck at G_max (SA0) / G_min (SA1).
      on_off_ratio: G_max / G_min; 0 means ideal (G_min = 0), else must exceed 1.
      read_noise: std of a multiplicative Gaussian read noise per cell, (1 + read_noise * z),
        in [0, 1],
        drawn from the read key (per inference).
      compensation: apply per-physical-column self-compensation gains.
      comp_form: how a gain is rounded: 'po2' (2^e), 'po2_pm' (2^e or 2^e * (1 +/- 2^-m),
        1 <= m <= comp_m_max: two shifts and an add), 'exact' (float gain, reference only).
      comp_m_max: largest shift m in 'po2_pm'.
      drift_nu_mean, drift_nu_std: conductance drift G(t) = G(t0) (t / t0)^(-nu), nu drawn per
        cell as max(N(drift_nu_mean, drift_nu_std^2), 0); mean in [0, 1], spread >= 0. 0, 0
        (default): no drift. PCM-like values: 0.05, 0.02 (`stages.py` gives the source).
      drift_nu_log: slopes (a, b) of the drift exponent's mean and spread per ln(x), x = the
        cell's target conductance / G_max: mean = clip(drift_nu_mean + a ln x, lo_mu, hi_mu),
        spread = clip(drift_nu_std + b ln x, lo_s, hi_s) (measured PCM: the spread's intercept
        may then be negative). (0, 0): the same nu statistics for every level.
      drift_nu_clip: (lo_mu, hi_mu, lo_s, hi_s), each in [0, 1].
      prog_poly: 'gaussian': the noise std relative to G_max as a polynomial in x = the cell's
        target conductance / G_max, sigma * max(p0 + p1 x + p2 x^2 + ..., 0) (state-dependent
        programming noise; (1.0,): the same for every level). Up to 6 coefficients.
      wire_ratio: IR drop: the resistance of one wire segment between neighbouring cells (and
        from a row's driver or to a column's sense amplifier) times G_max, in [0, 1]; 0: ideal
        wires. Each crossbar (xbar.rows_per_tile x xbar.cols) reads with its effective
        conductances (`crimp_jax/xbar/irdrop.py`), in training chips and Monte Carlo alike.
      ir_drop_model: 'solve' (block Gauss-Seidel sweeps of the nodal equations,
        `ir_drop_order` of them) or 'closed_form' (first-order sums in rational form, O(cells):
        no solve; within 2e-4 / 7e-3 of the exact solve on 32x32 crossbars at wire_ratio
        1e-4 / 1e-3, where IR drop itself is 4.5% / 32%; tests/test_irdrop.py).
      ir_drop_order: block Gauss-Seidel sweeps of the IR-drop solve, 1..20 (3: within 1e-4 of
        the exact solve up to wire_ratio 1e-3 on 32x32 crossbars, tests/test_irdrop.py).
      preset: '' or a measured device (`crimp_jax/variation/presets.py`: 'pcm_nandakumar2019',
        'rram_wan2022'): fills every field of this block left at its default with the
        device's value (sigma 1.0 = the measured noise); set fields override it.
      drift_t0: seconds after programming at which cells read their programmed value (> 0).
      read_time: seconds after programming at which the chip is read (> 0); the compensation
        gains are computed from an all-ones read at this time. Default: drift_t0 (no drift).
    """

    sigma: float = 0.0
    mode: str = "cell"
    kind: str = "lognormal"
    sa0_rate: float = 0.0
    sa1_rate: float = 0.0
    on_off_ratio: float = 0.0
    read_noise: float = 0.0
    compensation: bool = True
    comp_form: str = "po2_pm"
    comp_m_max: int = 6
    drift_nu_mean: float = 0.0
    drift_nu_std: float = 0.0
    drift_t0: float = 20.0
    read_time: float = 20.0
    drift_nu_log: tuple = (0.0, 0.0)
    drift_nu_clip: tuple = (0.0, 1.0, 0.0, 1.0)
    prog_poly: tuple = (1.0,)
    wire_ratio: float = 0.0
    ir_drop_model: str = "solve"
    ir_drop_order: int = 3
    preset: str = ""

    def __post_init__(self):
        if self.preset:
            from crimp_jax.variation.presets import PRESETS
            check_choice("variation.preset", self.preset, tuple(PRESETS))
            defaults = {f.name: f.default for f in dataclasses.fields(VariationSpec)}
            for name, value in PRESETS[self.preset].fields.items():
                if _same(getattr(self, name), defaults[name]):
                    object.__setattr__(self, name, value)
        for name, n in (("drift_nu_log", 2), ("drift_nu_clip", 4)):
            object.__setattr__(self, name, _floats(f"variation.{name}", getattr(self, name), n))
        object.__setattr__(self, "prog_poly",
                           _floats("variation.prog_poly", self.prog_poly, None))
        for i, v in enumerate(self.drift_nu_clip):
            check_float(f"variation.drift_nu_clip[{i}]", v, 0.0, 1.0)
        lo_m, hi_m, lo_s, hi_s = self.drift_nu_clip
        if lo_m > hi_m or lo_s > hi_s:
            raise ConfigError(f"variation.drift_nu_clip={self.drift_nu_clip!r}: expected lo <= "
                              f"hi for the mean and for the spread")
        check_float("variation.sigma", self.sigma, 0.0, MAX_SIGMA)
        check_float("variation.read_noise", self.read_noise, 0.0, MAX_READ_NOISE)
        for name in ("sa0_rate", "sa1_rate"):
            check_float(f"variation.{name}", getattr(self, name), 0.0, 1.0)
        if self.sa0_rate + self.sa1_rate > 1.0:
            raise ConfigError(f"variation.sa0_rate + sa1_rate = "
                              f"{self.sa0_rate + self.sa1_rate!r}: expected <= 1")
        check_choice("variation.mode", self.mode, MODES)
        check_choice("variation.kind", self.kind, KINDS)
        check_bool("variation.compensation", self.compensation)
        check_choice("variation.comp_form", self.comp_form, COMP_FORMS)
        r = self.on_off_ratio
        if not (r == 0 or (isinstance(r, (int, float)) and math.isfinite(r) and r > 1)):
            raise ConfigError(f"variation.on_off_ratio={r!r}: expected 0 (ideal) or a finite "
                              "number > 1")
        check_int("variation.comp_m_max", self.comp_m_max, 1, 20)
        check_float("variation.wire_ratio", self.wire_ratio, 0.0, 1.0)
        check_choice("variation.ir_drop_model", self.ir_drop_model, IR_DROP_MODELS)
        check_int("variation.ir_drop_order", self.ir_drop_order, 1, 20)
        state_dependent = any(a != 0 for a in self.drift_nu_log)  # intercepts of a log law
        check_float("variation.drift_nu_mean", self.drift_nu_mean,
                    -1.0 if state_dependent else 0.0, 1.0)
        check_float("variation.drift_nu_std", self.drift_nu_std,
                    -1.0 if state_dependent else 0.0, 1.0)
        check_float("variation.drift_t0", self.drift_t0, 0.0, lo_open=True)
        check_float("variation.read_time", self.read_time, 0.0, lo_open=True)

    @property
    def has_drift(self) -> bool:
        """Whether drift exponents can be nonzero (then a read time other than t0 drifts)."""
        return (self.drift_nu_mean > 0 or self.drift_nu_std > 0 or self.drift_nu_clip[0] > 0
                or self.drift_nu_clip[2] > 0 or any(a != 0 for a in self.drift_nu_log))

    @property
    def is_ideal(self) -> bool:
        """True when chips equal the intended weights exactly: no stage of the device model
        (`stages.STAGES`) acts."""
        from crimp_jax.variation.stages import chip_is_ideal
        return chip_is_ideal(self)


def _same(a, b) -> bool:
    return tuple(a) == tuple(b) if isinstance(b, tuple) and isinstance(a, (tuple, list)) \
        else a == b


def _floats(key: str, value, n) -> tuple:
    """`value` as a tuple of finite floats (of length n, or 1..6 when n is None)."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = None
    ok = out is not None and all(math.isfinite(v) for v in out) and (
        len(out) == n if n is not None else 1 <= len(out) <= 6)
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected "
                          f"{f'{n} numbers' if n is not None else '1 to 6 numbers'}")
    return out


def default_variation_config() -> ml_collections.ConfigDict:
    """The `variation` block experiment configs embed (ideal devices, compensation on)."""
    return default_block(VariationSpec)


def variation_spec(cfg) -> VariationSpec:
    """Builds a validated `VariationSpec` from a config block (ConfigDict, dict or spec)."""
    return parse_block(cfg, VariationSpec, "variation")
