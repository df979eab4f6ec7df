"""Measured devices: named presets of the `variation` block (`variation.preset`).

A preset fills the `variation` fields a config leaves at their defaults, so any field can still
be overridden one by one (`--config.variation.preset=pcm_nandakumar2019
--config.variation.drift_t0=1`); a field set explicitly to its default value is, like an unset
one, taken from the preset. Conductances are in units of the device's G_max (x = G / G_max);
`variation.sigma` scales the measured programming noise (1.0: as measured, the preset's value
where the config leaves sigma at 0).

Programming noise (`variation.kind='gaussian'` with `prog_poly`): G = max(G_T + sigma *
G_max * max(p(x_T), 0) * z, 0), p the polynomial `prog_poly` in x_T = G_T / G_max, z ~ N(0, 1),
per cell. Drift (`drift_nu_log`, `drift_nu_clip`): G(t) = G(t0) (t / t0)^(-nu), nu per cell ~
max(N(mu(x_T), s(x_T)^2), 0) with mu = clip(drift_nu_mean + a ln x_T, lo_mu, hi_mu) and s =
clip(drift_nu_std + b ln x_T, lo_s, hi_s), x_T clamped to >= 1e-7.

The constants are those of the public simulators named in each preset's `source`, converted
from uS to units of G_max (a polynomial in uS divided by G_max in uS), and cross-checked against
the formulas there. Not modelled: the 1/f read noise of the PCM model (use
`variation.read_noise` for a read-to-read spread) and the RRAM model's relaxation, which
aihwkit represents by re-drawing the programming noise at a later time, not as a drift law.
"""

from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class DevicePreset:
    """A measured device: where it comes from and the `variation` fields it sets."""

    technology: str
    g_max_us: float  # the G_max the model was fitted at (uS)
    source: str  # the measurement paper and the simulator the constants are taken from
    fields: types.MappingProxyType


def _preset(technology, g_max_us, source, **fields) -> DevicePreset:
    return DevicePreset(technology, g_max_us, source, types.MappingProxyType(fields))


_PCM_G_MAX = 25.0  # uS
_RRAM_G_MAX = 40.0  # uS

PRESETS = {
    # IBM aihwkit PCMLikeNoiseModel (src/aihwkit/inference/noise/pcm.py): programming noise
    # sigma(x) = 0.26348 + 1.9650 x - 1.1731 x^2 uS at g_max = 25 uS; drift nu mean
    # clip(-0.0155 ln x + 0.0244, 0.049, 0.1), std clip(-0.0125 ln x - 0.0059, 0.008, 0.045),
    # t0 = 20 s; g_min = 0 (an ideal on/off ratio).
    "pcm_nandakumar2019": _preset(
        "PCM", _PCM_G_MAX,
        "Nandakumar et al., ICECS 2019 (PCM array measurements, 1M devices); constants of IBM "
        "aihwkit's PCMLikeNoiseModel",
        kind="gaussian", sigma=1.0, on_off_ratio=0.0,
        prog_poly=(0.26348 / _PCM_G_MAX, 1.9650 / _PCM_G_MAX, -1.1731 / _PCM_G_MAX),
        drift_nu_mean=0.0244, drift_nu_std=-0.0059, drift_nu_log=(-0.0155, -0.0125),
        drift_nu_clip=(0.049, 0.1, 0.008, 0.045), drift_t0=20.0),
    # IBM aihwkit ReRamWan2022NoiseModel (src/aihwkit/inference/noise/reram.py): programming
    # noise 1 s after programming, sigma(x) = 0.348 + 16.030 x - 43.853 x^2 + 45.393 x^3
    # - 16.815 x^4 uS, fitted at g_max = 40 uS; no drift law, no read noise.
    "rram_wan2022": _preset(
        "RRAM", _RRAM_G_MAX,
        "Wan et al., Nature 2022 (NeuRRAM chip); polynomial of IBM aihwkit's "
        "ReRamWan2022NoiseModel (1 s after programming)",
        kind="gaussian", sigma=1.0, on_off_ratio=0.0,
        prog_poly=tuple(c / _RRAM_G_MAX for c in (0.348, 16.030, -43.853, 45.393, -16.815))),
}
