"""The `quant` config block and per-layer bit widths chosen by regex rules.

Bit-width resolution for a kernel path (e.g. 's0b1/conv1/conv/kernel') or a tap path
(e.g. 's0b1/relu0', 'mean0'; `crimp_jax.graph`), in increasing precedence:

1. `weight_bits` / `act_bits` (defaults);
2. layer policy: `first_layer_bits` for the first layer's weights (the first layer's input is
   the centred uint8 pixels, which are already integers and are never quantized);
   `last_layer_bits` for the classifier's weights *and* its input activation tap;
   `None` leaves the default in place;
3. `weight_rules` / `act_rules`: tuples of (regex, bits) searched (re.search) in order, the last
   matching rule wins. A rule that matches nothing is an error naming it.

Deployable weights are 2..8 bits (stored int8); activations 2..8 bits unsigned.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

import ml_collections

from crimp_jax.quant.numerics import check_bits, check_scale_mode
from crimp_jax.utils.blocks import default_block, parse_block
from crimp_jax.utils.paths import match_rules

MIN_BITS, MAX_BITS = 2, 8


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """Quantization settings (hashable: usable as a static jit argument).

    Attributes:
      scale_mode: 'po2' (scales 2^e, integer e; deployable) or 'float' (LSQ-style real scales,
        the ablation that prices the power-of-two constraint; not deployable).
      weight_bits, act_bits: default signed weight / unsigned activation bit widths.
      first_layer_bits, last_layer_bits: layer policy (see module docstring); None = default.
      weight_rules, act_rules: ((regex, bits), ...) overrides on kernel / tap paths.
      per_channel: one weight scale per output channel (= per crossbar column) instead of per
        layer.
      act_percentile: calibration percentile of each tap's activations (0..100].
      grad_scale: LSQ gradient scaling of the log2 thresholds.
      max_residual_shift: a layer whose output is a residual add's branch gets a weight
        exponent of at least (the other branch's exponent - its input's exponent - this), so
        aligning the two branches shifts by at most this many bits and every accumulator of
        the integer engine stays within 31 bits by construction, even for a branch of tiny
        weights (a zero-initialised last BatchNorm scale); its weights then round on that
        coarser grid (int in [4, 20]; docs/method.md).
    """

    scale_mode: str = "po2"
    weight_bits: int = 8
    act_bits: int = 8
    first_layer_bits: Optional[int] = 8
    last_layer_bits: Optional[int] = 8
    weight_rules: tuple = ()
    act_rules: tuple = ()
    per_channel: bool = False
    act_percentile: float = 99.99
    grad_scale: bool = True
    max_residual_shift: int = 16

    def __post_init__(self):
        check_scale_mode(self.scale_mode)
        m = self.max_residual_shift
        if not isinstance(m, int) or isinstance(m, bool) or not 4 <= m <= 20:
            raise ValueError(f"quant.max_residual_shift={m!r}: expected an int in [4, 20]")
        _check_deploy_bits(self.weight_bits, True, "quant.weight_bits")
        _check_deploy_bits(self.act_bits, False, "quant.act_bits")
        for name in ("first_layer_bits", "last_layer_bits"):
            if getattr(self, name) is not None:
                _check_deploy_bits(getattr(self, name), True, f"quant.{name}")
        for name, signed in (("weight_rules", True), ("act_rules", False)):
            rules = tuple(tuple(r) for r in getattr(self, name))
            for rule in rules:
                if len(rule) != 2 or not isinstance(rule[0], str):
                    raise ValueError(f"quant.{name} entry {rule!r}: expected (regex, bits)")
                re.compile(rule[0])
                _check_deploy_bits(rule[1], signed, f"quant.{name} {rule[0]!r}")
            object.__setattr__(self, name, rules)
        if not 0.0 < float(self.act_percentile) <= 100.0:
            raise ValueError(f"quant.act_percentile={self.act_percentile!r}: expected (0, 100]")


def _check_deploy_bits(bits, signed: bool, what: str) -> int:
    check_bits(bits, signed, what)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{what}={bits!r}: expected an integer in {MIN_BITS}..{MAX_BITS}")
    return bits


def default_quant_config() -> ml_collections.ConfigDict:
    """The `quant` block experiment configs embed (W8A8, power-of-two, per layer)."""
    return default_block(QuantSpec)


def quant_spec(cfg) -> QuantSpec:
    """Builds a validated `QuantSpec` from a ConfigDict, dict or QuantSpec; unknown keys error."""
    return parse_block(cfg, QuantSpec, "quant")



def _resolve(paths, default, policy, rules, what):
    bits = {p: default for p in paths}
    for path, b in policy.items():
        if b is not None:
            bits[path] = b
    matched = match_rules(list(paths), [r for r, _ in rules], what)
    for rule, b in rules:
        for path in matched[rule]:
            bits[path] = b
    return bits


def resolve_bits(spec: QuantSpec, kernel_paths, tap_paths, first_kernel: str,
                 last_kernel: str, last_input_tap: Optional[str]) -> tuple[dict, dict]:
    """-> ({kernel path: weight bits}, {tap path: act bits}) (see module docstring)."""
    wpolicy = {first_kernel: spec.first_layer_bits, last_kernel: spec.last_layer_bits}
    if first_kernel == last_kernel:
        wpolicy = {first_kernel: spec.last_layer_bits or spec.first_layer_bits}
    apolicy = {last_input_tap: spec.last_layer_bits} if last_input_tap else {}
    wbits = _resolve(kernel_paths, spec.weight_bits, wpolicy, spec.weight_rules,
                     "quant weight rule")
    abits = _resolve(tap_paths, spec.act_bits, apolicy, spec.act_rules, "quant act rule")
    return wbits, abits
