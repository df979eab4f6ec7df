"""The hardware component library: cited power and area figures, stored as data.

`components.json` beside this file holds every figure with its unit, how many physical units it
covers (`per`) and its source. `load_components` reads it and applies config overrides; the
result maps a component name to a `Component` with per-unit `power_mw` and `area_um2`.

Per-operation figures (Horowitz arithmetic, `energy_pj`) become power with the clock assumption
stored in the same file: power_mw = energy_pj * clock.op_rate_ghz (1 pJ per op at 1 GHz = 1 mW).

The converter entries state the resolution their figure is for (`bits`: the ADC 8, the DAC 1)
and a scaling rule (`scaling`, with its source); `scale_periphery` prices the ADCs and DACs at
another resolution with it:
  ADC  b bits:  x 2^(b - bits)                 (constant Walden FOM, fixed sample rate)
  DAC  d bits:  x (2^d - 1) / (2^bits - 1)     (2^d - 1 unit 1-bit DACs, an assumption)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Mapping

from crimp_jax.periphery import MAX_ADC_BITS, MAX_DAC_BITS
from crimp_jax.utils.blocks import ConfigError, check_float, check_int

COMPONENTS_PATH = os.path.join(os.path.dirname(__file__), "components.json")

# Fields a config may override, per kind of entry.
_NUMERIC_FIELDS = ("power_mw", "energy_pj", "area_um2", "per", "op_rate_ghz", "bits")
# Resolution a converter figure may be stated for (an int; 'bits' of the adc / dac entries).
_BITS_RANGE = {"adc": (1, MAX_ADC_BITS), "dac": (1, MAX_DAC_BITS)}


@dataclasses.dataclass(frozen=True)
class Component:
    """Per-unit cost of one hardware component (already divided by `per`).

    bits: the resolution the figure is for (the adc and dac entries), else None.
    """

    name: str
    power_mw: float
    area_um2: float
    source: str
    bits: int | None = None


def load_table(path: str = COMPONENTS_PATH) -> dict:
    """The raw component table (a dict of entries; '_about' is documentation)."""
    with open(path) as f:
        return json.load(f)


def _items(overrides) -> dict:
    if overrides is None:
        return {}
    if hasattr(overrides, "to_dict"):  # ml_collections.ConfigDict
        overrides = overrides.to_dict()
    return dict(overrides)


def apply_overrides(table: Mapping, overrides=None) -> dict:
    """Copy of `table` with numeric fields replaced.

    `overrides` is flat ({'adc.power_mw': 1.5}) or nested ({'adc': {'power_mw': 1.5}}), or a
    ConfigDict of either. An unknown component or field is an error naming the accepted ones.
    """
    out = copy.deepcopy(dict(table))
    names = sorted(k for k in out if not k.startswith("_"))
    flat = {}
    for key, value in _items(overrides).items():
        if isinstance(value, Mapping) or hasattr(value, "to_dict"):
            for field, v in _items(value).items():
                flat[f"{key}.{field}"] = v
        else:
            flat[key] = value
    for key, value in flat.items():
        name, _, field = key.partition(".")
        if name not in out or name.startswith("_"):
            raise ConfigError(f"unknown cost component {name!r} in override {key!r}; "
                             f"accepted components: {names}")
        fields = sorted(f for f in _NUMERIC_FIELDS if f in out[name])
        if field not in fields:
            raise ConfigError(f"unknown field {field!r} for cost component {name!r} in override "
                             f"{key!r}; accepted fields: {fields}")
        if field == "bits":
            lo, hi = _BITS_RANGE.get(name, (1, None))
            out[name][field] = check_int(f"cost.components.{key}", value, lo, hi)
            continue
        out[name][field] = check_float(f"cost.components.{key}", value, 0.0,
                                       lo_open=field == "per")
    return out


def load_components(overrides=None, path: str = COMPONENTS_PATH) -> dict:
    """{name: Component} with per-unit power (mW) and area (um^2), after `overrides`."""
    table = apply_overrides(load_table(path), overrides)
    rate_ghz = table["clock"]["op_rate_ghz"]
    comps = {}
    for name, entry in table.items():
        if name.startswith("_") or name == "clock":
            continue
        per = entry.get("per", 1.0)
        if "energy_pj" in entry:
            power = entry["energy_pj"] * rate_ghz
        else:
            power = entry["power_mw"]
        comps[name] = Component(name=name, power_mw=power / per, area_um2=entry["area_um2"] / per,
                                source=entry["source"], bits=entry.get("bits"))
    return comps


def check_periphery_bits(adc_bits, dac_bits) -> tuple:
    """(adc_bits, dac_bits) validated: adc_bits an int in [0, 16] (0 = the component library's
    reference ADC, unscaled), dac_bits an int in [1, 16] (1 = bit-serial, the reference)."""
    try:
        check_int("adc_bits", adc_bits, 0, MAX_ADC_BITS)
        check_int("dac_bits", dac_bits, 1, MAX_DAC_BITS)
    except ConfigError as e:
        raise ConfigError(f"{e} (adc_bits 0 = the reference ADC of components.json; "
                          f"dac_bits 1 = bit-serial 1-bit DACs)") from None
    return adc_bits, dac_bits


def adc_factor(bits: int, ref_bits: int) -> float:
    """Power and area of a `bits`-bit SAR ADC relative to a `ref_bits`-bit one at the same
    sample rate: 2^(bits - ref_bits) (components.json adc.scaling)."""
    return 2.0 ** (bits - ref_bits)


def dac_factor(bits: int, ref_bits: int) -> float:
    """Power and area of a `bits`-bit unit-element DAC relative to a `ref_bits`-bit one:
    (2^bits - 1) / (2^ref_bits - 1) (components.json dac.scaling)."""
    return (2 ** bits - 1) / (2 ** ref_bits - 1)


def _rescale(comp: Component, bits: int, factor) -> Component:
    if comp.bits is None:
        raise ConfigError(f"cost component {comp.name!r} states no 'bits' (the resolution its "
                          "figure is for); it cannot be scaled to another resolution")
    f = factor(bits, comp.bits)
    return dataclasses.replace(comp, power_mw=comp.power_mw * f, area_um2=comp.area_um2 * f,
                               bits=bits)


def scale_periphery(components: Mapping, adc_bits: int = 0, dac_bits: int = 1) -> dict:
    """Copy of `components` ({name: Component}, `load_components`) with the 'adc' and 'dac'
    entries priced at `adc_bits` / `dac_bits` (per-unit power and area; the unit counts do not
    change: one ADC per `cost.adc_columns` columns, one DAC per row, whatever their resolution).

    adc_bits: 0 leaves the ADC as given (the library's reference ADC, components.json
      adc.bits = 8); 1..16 scale it by `adc_factor`.
    dac_bits: 1..16, scaled by `dac_factor` from the DAC entry's bits (1: unchanged).
    The scaled entries carry the bits they are priced at, so scaling composes exactly.
    """
    check_periphery_bits(adc_bits, dac_bits)
    out = dict(components)
    if adc_bits:
        out["adc"] = _rescale(components["adc"], adc_bits, adc_factor)
    if dac_bits != (components["dac"].bits or 1):  # a table without 'bits': 1-bit DACs
        out["dac"] = _rescale(components["dac"], dac_bits, dac_factor)
    return out


def unconfirmed(path: str = COMPONENTS_PATH) -> list:
    """Names of the entries whose figures could not be checked against their source."""
    return [k for k, v in load_table(path).items()
            if not k.startswith("_") and not v.get("confirmed", False)]
