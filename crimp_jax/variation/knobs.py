"""Swept chip knobs: the settings a sweep passes as one traced mapping.

A chip is programmed and read with `knobs`, a dict {name: traced float32 scalar} that travels
unchanged through `perturb` / `read_chip` (device stages: `stages.Draw.value(name)`) and
`periphery.reader.crossbar_reader` (the ADCs). A name in the mapping overrides the config field
it stands for and switches on the stages that read that field (`stages.active_stages`), so every
point of a sweep compiles once. The side-input pattern: each consumer reads the names it knows
and ignores the rest.

`KNOBS` is the one list of sweepable names, with the config field each overrides and its valid
range; `evaluate.knob` / `evaluate.knob_values` sweep any of them (`crimp_jax.evaluate.chips`),
and `python -m experiments.evaluate --workdir=DIR --config.evaluate.knob=NAME
--config.evaluate.knob_values=...` re-evaluates a finished run along it. Adding a knob: a
`Knob` entry here, the stage (or periphery) reading `d.value(name)`, and its test.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

from crimp_jax.utils.blocks import ConfigError, check_float
from crimp_jax.variation.config import MAX_SIGMA


@dataclasses.dataclass(frozen=True)
class Knob:
    """One sweepable setting: it overrides `block.field`; sweep values lie in [lo, hi] (lo
    excluded when `lo_open`), integers when `integer`."""

    name: str
    block: str  # 'variation' (a device stage reads it) or 'adc' (the ADCs read it)
    field: str
    lo: float
    hi: float
    lo_open: bool = False
    integer: bool = False
    doc: str = ""


KNOBS = {k.name: k for k in (
    Knob("sigma", "variation", "sigma", 0.0, MAX_SIGMA,
         doc="write-variation sigma (stage write_variation)"),
    Knob("read_time", "variation", "read_time", 0.0, math.inf, lo_open=True,
         doc="seconds after programming at which the chip is read (stage drift)"),
    Knob("wire_ratio", "variation", "wire_ratio", 0.0, 1.0,
         doc="wire segment resistance over a cell's smallest resistance (stage ir_drop)"),
    Knob("sa0_rate", "variation", "sa0_rate", 0.0, 1.0,
         doc="fraction of programmed cells stuck at G_max (stage stuck_at)"),
    Knob("sa1_rate", "variation", "sa1_rate", 0.0, 1.0,
         doc="fraction of programmed cells stuck at G_min (stage stuck_at)"),
    Knob("adc_bits", "adc", "bits", 1, 16, integer=True,
         doc="ADC resolution (crossbar-faithful reads; needs adc.bits > 0)"),
    Knob("adc_gain_std", "adc", "gain_std", 0.0, 0.5,
         doc="per-ADC relative gain error std (needs adc.bits > 0)"),
    Knob("adc_offset_std", "adc", "offset_std", 0.0, 8.0,
         doc="per-ADC offset error std in LSB (needs adc.bits > 0)"),
)}


def knob(name: str, key: str = "evaluate.knob") -> Knob:
    """The registered knob `name`, or a ConfigError naming `key` and the choices."""
    if name not in KNOBS:
        raise ConfigError(f"{key}={name!r}: not a swept knob; expected one of "
                          f"{tuple(KNOBS)}")
    return KNOBS[name]


def check_values(name: str, values, key: str = "evaluate.knob_values") -> tuple:
    """`values` as a non-empty tuple of floats valid for knob `name` (ConfigError otherwise)."""
    k = knob(name)
    values = tuple(values)
    if not values:
        raise ConfigError(f"{key}=(): expected at least one value of {name}")
    entry = f"{key} entry for knob {name!r}"
    for v in values:
        check_float(entry, v, k.lo, k.hi, lo_open=k.lo_open)
        if k.integer and not float(v).is_integer():
            raise ConfigError(f"{entry}={v!r}: expected an integer in [{k.lo:g}, {k.hi:g}]")
    return tuple(float(v) for v in values)


def knob_key(value) -> str:
    """JSON key of a knob value: '%g' ('0', '0.001', '3600', '6')."""
    return f"{float(value):g}"


def device_at(vspec, knobs: Mapping):
    """`vspec` with the device knobs of `knobs` (concrete values) written into its fields: the
    device a sweep point programs (to ask `stages.chip_is_ideal` of it)."""
    fields = {KNOBS[n].field: float(v) for n, v in knobs.items()
              if n in KNOBS and KNOBS[n].block == "variation"}
    return dataclasses.replace(vspec, **fields)


__all__ = ["Knob", "KNOBS", "knob", "check_values", "knob_key", "device_at"]
