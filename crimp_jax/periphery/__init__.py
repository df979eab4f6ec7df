"""The analog periphery of a crossbar, in one package.

  adc       the `adc` / `dac` blocks and the converters' numerics (`AdcSpec`, `DacSpec`,
            `adc_range`, `adc_step_log2`, `adc_read`, `adc_errors`, `column_adcs`)
  product   a layer's crossbar-faithful product: DAC cycles, ADC reads, shift-and-add
            (`LayerPeriphery`, `crossbar_product`, `Periphery`, `read_reference`)
  reader    a chip read through the periphery by the fake-quantized model
            (`crossbar_reader`, `ideal_reads`, `calibrate_periphery`; import it from
            `crimp_jax.periphery.reader`: it needs the graph ops, which need `product`)

The integer engine and the float path share `product`, so they describe one datapath.
"""

from crimp_jax.periphery.adc import (
    FULL_SCALE_PER,
    FULL_SCALE_REFS,
    MAX_ADC_BITS,
    MAX_DAC_BITS,
    READS,
    AdcSpec,
    DacSpec,
    adc_errors,
    adc_range,
    adc_read,
    adc_spec,
    adc_step_log2,
    column_adcs,
    dac_spec,
    exact_pow2,
)
from crimp_jax.periphery.product import (
    LayerPeriphery,
    Periphery,
    crossbar_product,
    input_tiles,
    layer_periphery,
    read_reference,
    tile_row_dot,
)

__all__ = [
    "FULL_SCALE_PER", "FULL_SCALE_REFS", "MAX_ADC_BITS", "MAX_DAC_BITS", "READS", "AdcSpec",
    "DacSpec", "adc_errors", "adc_range", "adc_read", "adc_spec", "adc_step_log2", "column_adcs",
    "dac_spec", "exact_pow2", "LayerPeriphery", "Periphery", "crossbar_product", "input_tiles",
    "layer_periphery", "read_reference", "tile_row_dot",
]
