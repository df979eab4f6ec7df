"""The model registry: `@register_model(name)` on a module class (or factory) makes it
`model.name=<name>`. Every module file in `crimp_jax.models` is imported by the package, so a
new model is one file and needs no change elsewhere."""

from __future__ import annotations

from typing import Callable

_REGISTRY: dict = {}


def register_model(name: str) -> Callable:
    """Decorator: registers `factory(num_classes=..., dtype=...) -> flax module` as `name`."""

    def wrap(factory):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return wrap


def registered() -> dict:
    return dict(_REGISTRY)
