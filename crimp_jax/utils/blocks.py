"""Config blocks backed by frozen dataclasses: one way to build, parse and validate them.

Each transform (xbar, quant, prune, variation) describes its settings as a frozen, hashable
dataclass whose `__post_init__` validates the values; its config block is that dataclass's
fields as an ml_collections ConfigDict, and parsing refuses keys the dataclass does not have.
"""

from __future__ import annotations

import dataclasses

import ml_collections


def default_block(cls) -> ml_collections.ConfigDict:
    """The config block of dataclass `cls`: every field with its default."""
    return ml_collections.ConfigDict(dataclasses.asdict(cls()))


def parse_block(cfg, cls, name: str):
    """A validated `cls` from a ConfigDict, dict or `cls` instance; unknown keys are an error."""
    if isinstance(cfg, cls):
        return cfg
    items = dict(cfg.items()) if hasattr(cfg, "items") else dict(cfg)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ValueError(f"unknown {name} keys {unknown}; accepted: {sorted(known)}")
    return cls(**items)
