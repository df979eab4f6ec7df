"""The experiment config: its blocks, their defaults, and `parse_config` (one validation).

Blocks: `model`, `data`, `train` (float stage), `method` (which CRIMP transforms the second
stage composes), `crimp` (second stage), `quant`, `prune`, `variation`, `evaluate` (Monte
Carlo and integer deployment), `cost`, `xbar` (the one crossbar description shared by
pruning, variation and the cost model) and its periphery, `adc` and `dac` (the crossbar-faithful
product, `crimp_jax.periphery`). Every block is the fields of one frozen dataclass
(`BLOCKS`): `base_config()` is built from their defaults, so the documented defaults (the
dataclasses' docstrings, `docs/config.md`) are the run defaults, and `parse_config` turns a
config into a `RunSpec` of validated blocks, raising `ConfigError` (one line naming the key,
the value and what is accepted) for any wrong value, unknown key or unknown block. Configs are
locked: a misspelt key is an error in config files and in command-line overrides.
"""

from __future__ import annotations

import dataclasses
import re

import ml_collections

from crimp_jax.cost.model import CostSpec
from crimp_jax.data.config import DataSpec
from crimp_jax.evaluate.config import EvaluateSpec
from crimp_jax.models import ModelSpec
from crimp_jax.periphery import AdcSpec, DacSpec
from crimp_jax.prune.config import PruneSpec
from crimp_jax.quant.config import QuantSpec
from crimp_jax.train.config import CrimpSpec, TrainSpec
from crimp_jax.utils.blocks import (
    ConfigError,
    block_items,
    check_choice,
    default_block,
    parse_block,
)
from crimp_jax.variation.config import VariationSpec
from crimp_jax.variation.knobs import KNOBS
from crimp_jax.xbar.config import XbarSpec

# The CRIMP ablations (docs/method.md section 5): which transforms the second stage
# composes. 'fp' has no second stage.
METHODS = ("fp", "q", "qp", "qv", "crimp")
METHOD_LABELS = {
    "fp": "float baseline",
    "q": "quantized",
    "qp": "quantized + pruned",
    "qv": "quantized + variation-aware",
    "crimp": "full CRIMP (quantized + pruned + variation-aware)",
}

BLOCKS = {
    "model": ModelSpec,
    "data": DataSpec,
    "train": TrainSpec,
    "crimp": CrimpSpec,
    "xbar": XbarSpec,
    "adc": AdcSpec,
    "dac": DacSpec,
    "quant": QuantSpec,
    "prune": PruneSpec,
    "variation": VariationSpec,
    "evaluate": EvaluateSpec,
    "cost": CostSpec,
}
TOP_LEVEL = tuple(BLOCKS) + ("method",)


def uses(method: str) -> dict:
    """Which transforms a method composes: {'quant', 'prune', 'variation'} -> bool."""
    check_choice("method", method, METHODS)
    return {"quant": method != "fp", "prune": method in ("qp", "crimp"),
            "variation": method in ("qv", "crimp")}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A parsed, validated experiment config: one spec per block, plus the method."""

    method: str
    model: ModelSpec
    data: DataSpec
    train: TrainSpec
    crimp: CrimpSpec
    xbar: XbarSpec
    adc: AdcSpec
    dac: DacSpec
    quant: QuantSpec
    prune: PruneSpec
    variation: VariationSpec
    evaluate: EvaluateSpec
    cost: CostSpec

    @property
    def uses(self) -> dict:
        return uses(self.method)


def base_config() -> ml_collections.ConfigDict:
    """Every block with its defaults (the dataclasses' defaults) and method 'fp'."""
    c = ml_collections.ConfigDict({name: default_block(cls) for name, cls in BLOCKS.items()})
    c.method = "fp"
    return c


def config_from_dict(d: dict) -> ml_collections.ConfigDict:
    """The config a run recorded (summary.json's 'config': JSON, so tuples came back as lists)
    as a ConfigDict with the types of `base_config()`; a key it does not know is a
    ConfigError naming it."""
    c = base_config()
    for block, values in d.items():
        if not isinstance(values, dict):
            c[block] = values
            continue
        if block not in c:
            raise ConfigError(f"recorded config block {block!r} is unknown; blocks are: "
                              f"{', '.join(sorted(c))}")
        for key, value in values.items():
            if key not in c[block]:
                raise ConfigError(f"recorded config key {block}.{key} is unknown")
            if isinstance(c[block][key], tuple) and isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            c[block][key] = value
    return c


def lock(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    config.lock()
    return config


def parse_config(config) -> RunSpec:
    """Validates every block of `config` (a ConfigDict or dict) and the cross-block rules.

    Raises ConfigError on the first wrong value, unknown key or unknown block. Cheap: no data,
    no compile (the model-dependent layer rules are checked by the pipeline on abstract shapes).
    """
    items = block_items(config)
    unknown = sorted(set(items) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"unknown config block(s) {unknown}; blocks are: {', '.join(TOP_LEVEL)}")
    missing = sorted(set(TOP_LEVEL) - set(items))
    if missing:
        raise ConfigError(f"config lacks block(s) {missing}: build it from "
                          "crimp_jax.config.base_config()")
    method = check_choice("method", items["method"], METHODS)
    specs = {name: parse_block(items[name], cls, name) for name, cls in BLOCKS.items()}
    run = RunSpec(method=method, **specs)
    check_run(run)
    return run


def check_run(run: RunSpec) -> None:
    """Rules between blocks (each block's own values are checked by its dataclass)."""
    use = run.uses
    c = run.crimp
    if use["quant"] and c.epochs < 1:
        raise ConfigError(f"method={run.method!r} needs crimp epochs >= 1 (crimp.dense_epochs + "
                          "prune_epochs + finetune_epochs)")
    if c.adc_aware_epochs > 0 and use["quant"] and run.adc.bits == 0:
        raise ConfigError(f"crimp.adc_aware_epochs={c.adc_aware_epochs!r} trains through the "
                          f"ADCs, but adc.bits=0 (ideal ADCs): set adc.bits > 0 or "
                          f"crimp.adc_aware_epochs=0")
    if use["prune"] and c.prune_epochs < 1:
        raise ConfigError(f"method={run.method!r} prunes: crimp.prune_epochs="
                          f"{c.prune_epochs} must be >= 1")
    if use["variation"] and not run.variation.sigma > 0:
        raise ConfigError(f"method={run.method!r} trains with variation: variation.sigma="
                          f"{run.variation.sigma!r} must be > 0")
    if c.variation_draws > 1 and not use["variation"]:
        raise ConfigError(f"crimp.variation_draws={c.variation_draws}: only methods that train "
                          f"with variation ('qv', 'crimp') draw chips; method={run.method!r}: "
                          "use 1")
    if c.draws_split and run.train.batch_size % c.variation_draws:
        raise ConfigError(f"crimp.draws_split splits the batch between crimp.variation_draws="
                          f"{c.variation_draws} chips: train.batch_size={run.train.batch_size} "
                          "is not a multiple of it; change either, or set "
                          "crimp.draws_split=False")
    if c.bn_freeze_epochs > c.epochs:
        raise ConfigError(f"crimp.bn_freeze_epochs={c.bn_freeze_epochs!r}: expected <= the "
                          f"stage's {c.epochs} epochs")
    if c.select_chips and use["quant"]:
        if not run.data.val_per_class:
            raise ConfigError(f"crimp.select_chips={c.select_chips}: model selection scores a "
                              "validation split: set data.val_per_class > 0 (training images "
                              "per class held out of training)")
        if not c.selection_epochs(use["prune"], use["variation"]):
            raise ConfigError(f"crimp.select_chips={c.select_chips}: no stage epoch has the "
                              "final masks and full sigma (crimp.variation_start_epochs + "
                              f"variation_ramp_epochs > the stage's {c.epochs} epochs)")
    e = run.evaluate
    if use["quant"] and (run.adc.bits or e.adc_bits):
        for key, d in [("dac.bits", run.dac.bits)] + [("evaluate.dac_bits entry", d)
                                                      for d in e.dac_bits]:
            if d > run.quant.act_bits:
                raise ConfigError(f"{key}={d}: wider than the activations (quant.act_bits="
                                  f"{run.quant.act_bits}); expected <= {run.quant.act_bits}")
    if e.dac_bits and not run.adc.bits:
        raise ConfigError(f"evaluate.dac_bits={e.dac_bits}: a DAC sweep reads through finite "
                          "ADCs; set adc.bits > 0 (0 is ideal ADCs, where the DAC does not "
                          "matter)")
    if e.calib_quantiles and (run.adc.full_scale_ref != "calibrated"
                              or not (run.adc.bits or e.adc_bits)):
        raise ConfigError(f"evaluate.calib_quantiles={e.calib_quantiles}: a quantile sweep "
                          "recalibrates finite ADCs; set adc.full_scale_ref='calibrated' "
                          f"(now {run.adc.full_scale_ref!r}) and adc.bits > 0 or "
                          "evaluate.adc_bits")
    if e.knob and KNOBS[e.knob].block == "adc" and not run.adc.bits:
        raise ConfigError(f"evaluate.knob={e.knob!r} sweeps finite ADCs, but adc.bits=0 (ideal "
                          "ADCs, read through effective kernels): set adc.bits > 0 (the "
                          "swept values override it)")
    for key, values in (("evaluate.adc_bits", e.adc_bits),
                        ("evaluate.knob_values", e.knob_values if e.knob == "adc_bits" else ())):
        if run.adc.read == "differential" and 1 in values:
            raise ConfigError(f"{key}={values}: 1 bit with adc.read='differential' (a signed "
                              "ADC needs >= 2 bits)")
    if run.evaluate.test_per_class and run.data.test_per_class and \
            run.evaluate.test_per_class > run.data.test_per_class:
        raise ConfigError(f"evaluate.test_per_class={run.evaluate.test_per_class}: expected <= "
                          f"data.test_per_class={run.data.test_per_class} (a subset of the test "
                          "split)")


def _attribute_docs(cls) -> dict:
    """{field: description} from the 'Attributes:' sections of `cls` and its bases' docstrings
    (an entry 'a, b: text' documents both a and b; continuation lines are joined)."""
    docs = {}
    for klass in reversed(cls.__mro__):
        lines = (klass.__doc__ or "").splitlines()
        if not any(ln.strip() == "Attributes:" for ln in lines):
            continue
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Attributes:") + 1
        names, text = None, []
        for ln in lines[start:] + [""]:
            entry = re.match(r"^\s{4,6}([a-z_][a-z0-9_, ]*):\s*(.*)$", ln)
            if entry and len(ln) - len(ln.lstrip()) <= 6:
                if names:
                    docs.update({n: " ".join(text) for n in names})
                names = [n.strip() for n in entry.group(1).split(",")]
                text = [entry.group(2).strip()]
            elif ln.strip() and names:
                text.append(ln.strip())
            elif not ln.strip() and names:
                docs.update({n: " ".join(text) for n in names})
                names = None
    return docs


def reference_markdown() -> str:
    """docs/config.md: every key of every block with its run default and its description, from
    the block dataclasses (so the documented defaults are the run defaults)."""
    out = ["# Config reference\n",
           "\nGenerated from the config dataclasses by `python -m crimp_jax.config > docs/config.md`"
           " (a test checks it is current). Override any key on the command line: "
           "`--config.BLOCK.KEY=VALUE`. Every value is validated before any data load or "
           "compile; a wrong one ends the run with one `error:` line naming the key.\n",
           f"\n`method`: one of {', '.join(f'`{m}`' for m in METHODS)} "
           f"({'; '.join(f'`{k}` {v}' for k, v in METHOD_LABELS.items())}). Default `fp`.\n"]
    for name, cls in BLOCKS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        out.append(f"\n## `{name}` ({cls.__module__}.{cls.__name__})\n\n{doc}\n\n"
                   "| key | default | meaning |\n|---|---|---|\n")
        descriptions = _attribute_docs(cls)
        for field, value in default_block(cls).to_dict().items():
            text = descriptions.get(field, "").replace("|", "\\|")
            out.append(f"| `{field}` | `{value!r}` | {text} |\n")
    return "".join(out)


if __name__ == "__main__":
    print(reference_markdown(), end="")
