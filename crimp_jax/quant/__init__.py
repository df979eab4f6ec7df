"""Power-of-two (and float-scale ablation) quantization: numerics, config, graph, QAT forward."""

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
                                  default_weight_transform,
                                  fake_quant_apply,
                                  make_plan,
                                  quantize_activations,
                                  quantize_biases_int,
                                  quantize_params,
                                  quantize_weights_int,
                                  weight_exponents,
)
from crimp_jax.quant.graph import input_taps, layer_ops, model_graph, tap_paths
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
    "make_plan", "quantize_activations", "quantize_biases_int", "quantize_params",
    "quantize_weights_int", "weight_exponents", "input_taps", "layer_ops", "model_graph",
    "tap_paths", "check_bits", "fake_quant", "qrange", "quantize_levels", "round_half_up",
    "round_ste", "scale_exponent",
]
