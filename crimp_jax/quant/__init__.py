"""Power-of-two (and float-scale ablation) quantization: numerics, config, QAT forward."""

from crimp_jax.quant.calibrate import init_quant_state, record_taps
from crimp_jax.quant.config import (
                                  QuantSpec,
                                  default_quant_config,
                                  quant_spec,
                                  resolve_bits,
)
from crimp_jax.quant.fake import (
                                  QuantPlan,
                                  act_exponent,
                                  act_quantizer,
                                  default_weight_transform,
                                  fake_quant_apply,
                                  make_plan,
                                  quantize_biases_int,
                                  quantize_params,
                                  quantize_weights_int,
                                  weight_exponents,
)
from crimp_jax.quant.numerics import (
                                  check_bits,
                                  fake_quant,
                                  qrange,
                                  quantize_levels,
                                  round_half_up,
                                  round_ste,
                                  scale_exponent,
)

__all__ = [
    "init_quant_state", "record_taps", "QuantSpec", "default_quant_config", "quant_spec",
    "resolve_bits", "QuantPlan", "act_exponent", "default_weight_transform", "fake_quant_apply",
    "make_plan", "act_quantizer", "quantize_biases_int", "quantize_params",
    "quantize_weights_int", "weight_exponents", "check_bits", "fake_quant", "qrange", "quantize_levels", "round_half_up",
    "round_ste", "scale_exponent",
]
