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

from crimp_jax.utils.blocks import default_block, parse_block

MODES = ("cell", "weight")
KINDS = ("lognormal", "gaussian")
COMP_FORMS = ("po2", "po2_pm", "exact")


@dataclasses.dataclass(frozen=True)
class VariationSpec:
    """Device model and self-compensation settings (hashable: a static jit argument).

    Attributes:
      sigma: write variation strength. 'lognormal': G * exp(theta), theta ~ N(0, sigma^2);
        'gaussian': G + sigma * G_max * z, z ~ N(0, 1) (additive, relative to the top level).
      mode: 'cell': one draw per physical cell (per bit-slice and polarity); 'weight': one draw
        per weight and polarity (the weight is one multi-level cell).
      kind: 'lognormal' or 'gaussian'.
      sa0_rate, sa1_rate: fraction of programmed cells stuck at G_max (SA0) / G_min (SA1).
      on_off_ratio: G_max / G_min; 0 means ideal (G_min = 0), else must exceed 1.
      read_noise: std of a multiplicative Gaussian read noise per cell, (1 + read_noise * z),
        drawn from the read key (per inference).
      compensation: apply per-physical-column self-compensation gains.
      comp_form: how a gain is rounded: 'po2' (2^e), 'po2_pm' (2^e or 2^e * (1 +/- 2^-m),
        1 <= m <= comp_m_max: two shifts and an add), 'exact' (float gain, reference only).
      comp_m_max: largest shift m in 'po2_pm'.
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

    def __post_init__(self):
        for name in ("sigma", "read_noise"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"variation.{name}={value!r}: expected a finite number >= 0")
        for name in ("sa0_rate", "sa1_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"variation.{name}={value!r}: expected a rate in [0, 1]")
        if self.sa0_rate + self.sa1_rate > 1.0:
            raise ValueError(f"variation.sa0_rate + sa1_rate = {self.sa0_rate + self.sa1_rate!r}: "
                             "expected <= 1")
        if self.mode not in MODES:
            raise ValueError(f"variation.mode={self.mode!r}: expected one of {MODES}")
        if self.kind not in KINDS:
            raise ValueError(f"variation.kind={self.kind!r}: expected one of {KINDS}")
        if self.comp_form not in COMP_FORMS:
            raise ValueError(f"variation.comp_form={self.comp_form!r}: expected one of {COMP_FORMS}")
        r = self.on_off_ratio
        if not isinstance(r, (int, float)) or not (r == 0 or (r > 1 and math.isfinite(r))):
            raise ValueError(f"variation.on_off_ratio={r!r}: expected 0 (ideal) or a finite "
                             "number > 1")
        if not isinstance(self.comp_m_max, int) or not 1 <= self.comp_m_max <= 20:
            raise ValueError(f"variation.comp_m_max={self.comp_m_max!r}: expected an int in 1..20")

    @property
    def is_ideal(self) -> bool:
        """True when chips equal the intended weights exactly (no variation, faults or noise)."""
        return (self.sigma == 0 and self.sa0_rate == 0 and self.sa1_rate == 0
                and self.read_noise == 0 and self.on_off_ratio == 0)


def default_variation_config() -> ml_collections.ConfigDict:
    """The `variation` block experiment configs embed (ideal devices, compensation on)."""
    return default_block(VariationSpec)


def variation_spec(cfg) -> VariationSpec:
    """Builds a validated `VariationSpec` from a config block (ConfigDict, dict or spec)."""
    return parse_block(cfg, VariationSpec, "variation")
