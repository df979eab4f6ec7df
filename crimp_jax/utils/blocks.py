"""Config blocks backed by frozen dataclasses: one way to build, parse and validate them.

Every config block (`model`, `data`, `train`, `crimp`, `xbar`, `quant`, `prune`, `variation`,
`evaluate`, `cost`) is described by a frozen, hashable dataclass whose `__post_init__`
validates each value with the checks below; its config block is that dataclass's fields as an
ml_collections ConfigDict (`default_block`), so the documented defaults *are* the run defaults,
and parsing (`parse_block`) refuses keys the dataclass does not have.

Every check raises `ConfigError` with one line naming the key, the value and what is accepted:
`train.lr=nan: expected a finite number > 0`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Iterable

import ml_collections


class ConfigError(ValueError):
    """A config value that is wrong for its key (the message names key, value, accepted)."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(key: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """An int (not a bool) in [lo, hi] (either bound may be None)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected an int{_range(lo, hi)}")
    return value


def check_float(key: str, value, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite number in the interval given by lo/hi (open ends with lo_open/hi_open)."""
    ok = _is_number(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected a finite number"
                          f"{_range(lo, hi, lo_open, hi_open)}")
    return float(value)


def check_choice(key: str, value, choices: Iterable) -> object:
    """One of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r}: expected one of {choices}")
    return value


def check_bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: expected True or False")
    return value


def check_str(key: str, value) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}={value!r}: expected a string")
    return value


def check_regex(key: str, value) -> str:
    """A string that compiles as a regular expression."""
    check_str(key, value)
    try:
        re.compile(value)
    except re.error as e:
        raise ConfigError(f"{key}={value!r}: expected a regular expression ({e})") from None
    return value


def _range(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi:g}"
    return ""


def default_block(cls) -> ml_collections.ConfigDict:
    """The config block of dataclass `cls`: every field with its default."""
    return ml_collections.ConfigDict(dataclasses.asdict(cls()))


def block_items(cfg) -> dict:
    """A config block (ConfigDict, dict or dataclass instance) as a plain dict of its keys."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    return dict(cfg.items()) if hasattr(cfg, "items") else dict(cfg)


def parse_block(cfg, cls, name: str):
    """A validated `cls` from a ConfigDict, dict or `cls` instance; unknown keys are an error."""
    if isinstance(cfg, cls):
        return cfg
    items = block_items(cfg)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ConfigError(f"unknown {name} key(s) {unknown}; accepted: {sorted(known)}")
    return cls(**items)
