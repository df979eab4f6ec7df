"""Whole-model computing power and area, per layer and per component, and the reductions.

`model_cost` prices one deployment scenario (pruning kind x scale kind) of a model;
`reductions` prices CRIMP and the three references of docs/method.md section 6 and divides:

  original     dense, float scales applied on FP32 multipliers (one per output column).
  quant_float  dense integer quantization with float (non-power-of-two) scales, applied as
               fixed-point INT32 multipliers (one per output column; integer-only requantization).
  unstructured    unstructured pruning at the same per-layer sparsity, each column compacted, with
               one data-alignment unit per physical crossbar; same scale kind as CRIMP, so the
               ratio isolates the cost of the pruning shape.

Power is in mW and area in um^2 throughout; 'computing' power/area = crossbars and their
peripherals plus the arithmetic that scales need (buffers, routers and eDRAM are not counted,
as they do not change with the compression method).

The periphery's resolution comes from the run (`adc.bits`, `dac.bits`): `reductions(...,
adc_bits, dac_bits)` prices every scenario's ADCs and DACs at it (`components.scale_periphery`),
so the reductions compare designs with the same periphery, and reports the deployed design's
saving from the periphery itself (`periphery_saving`: its cost with the library's reference
8-bit ADCs and 1-bit DACs over its cost at the configured bits).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import ml_collections
import numpy as np

from crimp_jax.cost.components import load_components, scale_periphery
from crimp_jax.cost.count import CountOptions, layer_counts
from crimp_jax.utils.blocks import block_items, default_block, parse_block
from crimp_jax.utils.paths import flatten, kernel_paths
from crimp_jax.xbar.config import layer_bits, xbar_spec


@dataclasses.dataclass(frozen=True)
class CostSpec(CountOptions):
    """The `cost` block: how the crossbars' periphery is organised, and the component figures.

    Attributes:
      adc_columns: crossbar columns that share one ADC (ISAAC: 128, one ADC per crossbar);
        Monte Carlo chips draw one gain/offset error per shared ADC (adc.gain_std).
      adcs_per_shift_add: ADCs served by one shift-and-add unit (ISAAC: 8 ADCs / 4 S+A = 2).
      multiplier: unit that applies a non-power-of-two scale ('fp32' | 'int32' | 'int8').
      components: overrides of `crimp_jax/cost/components.json` figures, e.g.
        {'adc': {'power_mw': 1.5}} or {'adc.power_mw': 1.5}; an unknown component or field, or
        a value that is not a finite number >= 0, is an error.
    """

    components: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "components", block_items(self.components))
        load_components(self.components)  # validates the overrides

    @property
    def options(self) -> CountOptions:
        return CountOptions(self.adc_columns, self.adcs_per_shift_add, self.multiplier)


def default_cost_config() -> ml_collections.ConfigDict:
    """The `cost` block of an experiment config (organisation options + component overrides)."""
    return default_block(CostSpec)


def cost_setup(cfg=None):
    """(CountOptions, components) from a `cost` block (CostSpec, ConfigDict, dict or None)."""
    spec = parse_block({} if cfg is None else cfg, CostSpec, "cost")
    return spec.options, load_components(spec.components)


def layer_shapes(params) -> dict:
    """{kernel path: shape} of every conv/dense kernel; params may be arrays or ShapeDtypeStructs
    (from `jax.eval_shape(model.init, ...)`), or already a {path: shape} mapping."""
    flat = flatten(params) if isinstance(params, Mapping) else dict(params)
    if flat and all(isinstance(v, (tuple, list)) for v in flat.values()):
        return {p: tuple(int(d) for d in s) for p, s in flat.items()}  # order as given
    return {p: tuple(int(d) for d in flat[p].shape)
            for p in sorted(kernel_paths(params), key=natural_key)}


def natural_key(path: str):
    """Sort key that puts conv2 before conv10 (for tables and figures in network order)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _price(counts: Mapping, components: Mapping):
    power = {k: n * components[k].power_mw for k, n in counts.items()}
    area = {k: n * components[k].area_um2 for k, n in counts.items()}
    return power, area


def _add(total: dict, part: Mapping):
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def model_cost(params, spec, bits, masks=None, *, pruning: str = "crimp", scale: str = "po2",
               options: CountOptions | None = None, components: Mapping | None = None,
               multiplier: str | None = None) -> dict:
    """Counts, power (mW) and area (um^2) of a model on crossbars, per layer and per component.

    params: parameter tree (arrays or ShapeDtypeStructs) or {kernel path: shape}.
    masks: tree or {path: mask} of kernel-shaped 0/1 masks; missing/None = layer not pruned.
    bits: {kernel path: weight bits} (the quantization plan's `wbits`) or one int for all.
    multiplier: overrides options.multiplier for this call ('fp32' | 'int32' | 'int8').
    Returns a JSON-ready dict: 'layers' (per path: shape, dense_tiles, tiles, counts, power_mw,
    area_um2, totals), 'counts' / 'power_mw' / 'area_um2' per component, 'total_power_mw',
    'total_area_um2', 'tiles', 'dense_tiles', 'crossbars'.
    """
    spec = xbar_spec(spec)
    options = options or CountOptions()
    if multiplier is not None:
        options = dataclasses.replace(options, multiplier=multiplier)
    components = components if components is not None else load_components()
    shapes = layer_shapes(params)
    flat_masks = {} if masks is None else (flatten(masks) if isinstance(masks, Mapping) else masks)
    unknown = sorted(p for p, m in flat_masks.items() if m is not None and p not in shapes
                     and getattr(m, "ndim", 0) in (2, 4))
    if unknown:
        raise ValueError(f"masks for unknown kernels {unknown}; kernels are {sorted(shapes)}")
    layers, counts, power, area = {}, {}, {}, {}
    for path, shape in shapes.items():
        c = layer_counts(shape, spec, layer_bits(bits, path), flat_masks.get(path),
                         pruning=pruning, scale=scale, options=options)
        p, a = _price(c["counts"], components)
        layers[path] = dict(shape=list(shape), **c, power_mw=p, area_um2=a,
                            total_power_mw=sum(p.values()), total_area_um2=sum(a.values()))
        _add(counts, c["counts"])
        _add(power, p)
        _add(area, a)
    return {
        "pruning": pruning, "scale": scale,
        "multiplier": options.multiplier if scale == "float" else None,
        "layers": layers, "counts": counts, "power_mw": power, "area_um2": area,
        "total_power_mw": float(sum(power.values())), "total_area_um2": float(sum(area.values())),
        "tiles": sum(l["tiles"] for l in layers.values()),
        "dense_tiles": sum(l["dense_tiles"] for l in layers.values()),
        "crossbars": counts.get("crossbar", 0),
    }


def random_unstructured_masks(masks, seed: int = 0) -> dict:
    """Unstructured masks with the same number of kept weights per layer as `masks`, at random
    positions (a stand-in when no magnitude-pruned mask of the same model is at hand)."""
    rng = np.random.default_rng(seed)
    out = {}
    for path, m in (flatten(masks) if isinstance(masks, Mapping) else masks).items():
        if m is None:
            continue
        m = np.asarray(m)
        flat = np.zeros(m.size, np.float32)
        flat[rng.permutation(m.size)[: int(np.count_nonzero(m))]] = 1.0
        out[path] = flat.reshape(m.shape)
    return out


def _periphery(components: Mapping) -> dict:
    return {k: {"bits": components[k].bits, "power_mw": float(components[k].power_mw),
                "area_um2": float(components[k].area_um2)} for k in ("adc", "dac")}


def _saving(reference: float, configured: float) -> float:
    if configured > 0:
        return float(reference / configured)
    return 1.0 if reference == 0 else float("inf")


def reductions(params, spec, bits, masks=None, *, scale: str = "po2", cfg=None,
               unstructured_masks=None, adc_bits: int = 0, dac_bits: int = 1) -> dict:
    """CRIMP's cost and its power/area reductions (reference / CRIMP) against the references.

    bits: {kernel path: weight bits} or one int (`model_cost`). masks: CRIMP masks (crossbar +
    kernel-group pruning). unstructured_masks: masks of an unstructured pruning of the same
    model at the same sparsity (the pruning report's magnitude baseline; default:
    `random_unstructured_masks`). cfg: the `cost` config block (see `default_cost_config`).
    adc_bits / dac_bits: the periphery's resolution (the run's `adc.bits`, `dac.bits`); every
    scenario's ADCs and DACs are priced at it (`components.scale_periphery`; adc_bits 0 = the
    library's reference 8-bit ADC, dac_bits 1 = its 1-bit DACs; the defaults give the
    reference figures unchanged).
    Returns {'crimp': cost, 'references': {name: cost}, 'power_reduction': {name: x},
    'area_reduction': {name: x}, 'adc_bits', 'dac_bits' (as given), 'periphery' /
    'reference_periphery' ({'adc' | 'dac': {bits, power_mw, area_um2}} per unit, as priced /
    of the library), 'crimp_at_reference_periphery' ({total_power_mw, total_area_um2}: the same
    CRIMP counts priced with the reference periphery), 'periphery_saving' ({power_x, area_x}:
    CRIMP at the reference periphery / CRIMP as configured)}.
    """
    options, base = cost_setup(cfg)
    components = scale_periphery(base, adc_bits, dac_bits)
    kw = dict(options=options, components=components)
    crimp = model_cost(params, spec, bits, masks, pruning="crimp", scale=scale, **kw)
    if unstructured_masks is None and masks is not None:
        unstructured_masks = random_unstructured_masks(masks)
    refs = {
        "original": model_cost(params, spec, bits, None, pruning="none", scale="float",
                               multiplier="fp32", **kw),
        "quant_float": model_cost(params, spec, bits, None, pruning="none", scale="float",
                                  multiplier="int32", **kw),
        "unstructured": model_cost(params, spec, bits, unstructured_masks,
                                   pruning="unstructured", scale=scale, **kw),
    }

    def ratio(ref, key):
        return float(ref[key] / crimp[key]) if crimp[key] > 0 else float("inf")

    ref_power, ref_area = _price(crimp["counts"], base)  # same counts, reference periphery
    at_ref = {"total_power_mw": float(sum(ref_power.values())),
              "total_area_um2": float(sum(ref_area.values()))}
    return {
        "crimp": crimp, "references": refs,
        "power_reduction": {k: ratio(r, "total_power_mw") for k, r in refs.items()},
        "area_reduction": {k: ratio(r, "total_area_um2") for k, r in refs.items()},
        "adc_bits": adc_bits, "dac_bits": dac_bits,
        "periphery": _periphery(components), "reference_periphery": _periphery(base),
        "crimp_at_reference_periphery": at_ref,
        "periphery_saving": {
            "power_x": _saving(at_ref["total_power_mw"], crimp["total_power_mw"]),
            "area_x": _saving(at_ref["total_area_um2"], crimp["total_area_um2"]),
        },
    }


def cost_summary(result: Mapping) -> dict:
    """The compact `cost` entry of a run's summary.json, from `reductions(...)`.

    Besides the totals and reductions it keeps what the report's figures need:
    'power_mw_by_component' / 'area_um2_by_component' ({scenario: {component: value}} for
    'crimp' and each reference), 'per_layer_tiles' ({path: [dense, CRIMP] logical tiles}) and
    'per_layer_crossbars' ({path: [dense, CRIMP] physical crossbars}). The periphery:
    'adc_bits' / 'dac_bits' (as given to `reductions`; adc_bits 0 = the reference ADC),
    'periphery' / 'reference_periphery' (per-unit ADC and DAC {bits, power_mw, area_um2} as
    priced / of the component library), 'power_mw_at_reference_periphery' /
    'area_mm2_at_reference_periphery' (the deployed design with the reference 8-bit ADCs and
    1-bit DACs) and 'periphery_saving' ({power_x, area_x}: that cost / the configured cost).
    """
    crimp = result["crimp"]
    scenarios = {**result["references"], "crimp": crimp}
    dense = result["references"]["original"]["layers"]
    return {
        "power_mw": crimp["total_power_mw"],
        "area_mm2": crimp["total_area_um2"] * 1e-6,
        "crossbars": crimp["crossbars"],
        "tiles": crimp["tiles"],
        "dense_tiles": crimp["dense_tiles"],
        "power_reduction": dict(result["power_reduction"]),
        "area_reduction": dict(result["area_reduction"]),
        "reference_power_mw": {k: r["total_power_mw"] for k, r in result["references"].items()},
        "reference_area_mm2": {k: r["total_area_um2"] * 1e-6
                               for k, r in result["references"].items()},
        "per_layer_tiles": {p: [l["dense_tiles"], l["tiles"]] for p, l in crimp["layers"].items()},
        "per_layer_crossbars": {p: [dense[p]["counts"]["crossbar"], l["counts"]["crossbar"]]
                                for p, l in crimp["layers"].items()},
        "power_mw_by_component": {k: {c: float(v) for c, v in r["power_mw"].items()}
                                  for k, r in scenarios.items()},
        "area_um2_by_component": {k: {c: float(v) for c, v in r["area_um2"].items()}
                                  for k, r in scenarios.items()},
        "adc_bits": result["adc_bits"],
        "dac_bits": result["dac_bits"],
        "periphery": {k: dict(v) for k, v in result["periphery"].items()},
        "reference_periphery": {k: dict(v) for k, v in result["reference_periphery"].items()},
        "power_mw_at_reference_periphery":
            result["crimp_at_reference_periphery"]["total_power_mw"],
        "area_mm2_at_reference_periphery":
            result["crimp_at_reference_periphery"]["total_area_um2"] * 1e-6,
        "periphery_saving": dict(result["periphery_saving"]),
    }
