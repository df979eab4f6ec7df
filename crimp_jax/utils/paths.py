"""Parameter pytrees addressed by slash paths ('s0b1/conv1/conv/kernel') and regex rules.

Every component that chooses layers (quantization bit widths, pruning, variation) does it with
regex rules over these paths. A rule that matches nothing is an error, so a typo never silently
leaves a layer out.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, Mapping, Sequence

from crimp_jax.utils.blocks import ConfigError

log = logging.getLogger(__name__)


def flatten(tree: Mapping, prefix: str = "") -> dict:
    """Nested dict -> {'a/b/c': leaf} (insertion order kept)."""
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def unflatten(flat: Mapping[str, object]) -> dict:
    """{'a/b/c': leaf} -> nested dict."""
    out: dict = {}
    for path, value in flat.items():
        node = out
        *parents, last = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def kernel_paths(params: Mapping) -> list:
    """Paths of every conv/dense kernel (leaves named 'kernel' with 2 or 4 dims)."""
    return [p for p, v in flatten(params).items()
            if p.endswith("/kernel") and getattr(v, "ndim", len(getattr(v, "shape", ()))) in (2, 4)]


def match_rules(paths: Sequence[str], rules: Iterable[str], what: str = "rule") -> dict:
    """Maps each regex rule to the paths it matches (re.search); an unmatched rule is an error."""
    matched = {}
    for rule in rules:
        pattern = re.compile(rule)
        hits = [p for p in paths if pattern.search(p)]
        if not hits:
            raise ConfigError(f"{what} {rule!r} matches no parameter; paths are: "
                              f"{', '.join(paths)}")
        matched[rule] = hits
        log.info("%s %r matches %s", what, rule, hits)
    return matched


def select_paths(paths: Sequence[str], include: Iterable[str] = (".*",),
                 exclude: Iterable[str] = ()) -> list:
    """Paths matched by any `include` rule and by no `exclude` rule (all rules must match)."""
    inc = match_rules(paths, include, "include rule")
    exc = match_rules(paths, exclude, "exclude rule")
    chosen = {p for hits in inc.values() for p in hits} - {p for hits in exc.values() for p in hits}
    return [p for p in paths if p in chosen]


def short_layer_name(path: str) -> str:
    """Label for tables and figures: 's0b1/conv2/conv/kernel' -> 's0b1/conv2', 'fc/kernel' -> 'fc'."""
    return path.removesuffix("/kernel").removesuffix("/conv")
