"""The hardware component library: cited power and area figures, stored as data.

`components.json` beside this file holds every figure with its unit, how many physical units it
covers (`per`) and its source. `load_components` reads it and applies config overrides; the
result maps a component name to a `Component` with per-unit `power_mw` and `area_um2`.

Per-operation figures (Horowitz arithmetic, `energy_pj`) become power with the clock assumption
stored in the same file: power_mw = energy_pj * clock.op_rate_ghz (1 pJ per op at 1 GHz = 1 mW).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Mapping

from crimp_jax.utils.blocks import ConfigError, check_float

COMPONENTS_PATH = os.path.join(os.path.dirname(__file__), "components.json")

# Fields a config may override, per kind of entry.
_NUMERIC_FIELDS = ("power_mw", "energy_pj", "area_um2", "per", "op_rate_ghz")


@dataclasses.dataclass(frozen=True)
class Component:
    """Per-unit cost of one hardware component (already divided by `per`)."""

    name: str
    power_mw: float
    area_um2: float
    source: str


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
                                source=entry["source"])
    return comps


def unconfirmed(path: str = COMPONENTS_PATH) -> list:
    """Names of the entries whose figures could not be checked against their source."""
    return [k for k, v in load_table(path).items()
            if not k.startswith("_") and not v.get("confirmed", False)]
