"""One config truth: blocks are dataclasses, documented defaults are the run defaults, every
shipped config parses, and docs/config.md is generated from the same dataclasses."""

import dataclasses
import importlib
from pathlib import Path

import pytest

from crimp_jax.config import (
    BLOCKS,
    _attribute_docs,
    base_config,
    parse_config,
    reference_markdown,
)
from crimp_jax.utils.blocks import ConfigError
from experiments.configs import resnet20_converged

REPO = Path(__file__).resolve().parents[1]

SHIPPED = [("quickstart", a) for a in ("", "tiny")] + \
    [("resnet20_proxy", a) for a in ("fp", "fp_long", "q", "qp50", "qp80", "qv", "crimp")] + \
    [("resnet20_converged", a) for a in resnet20_converged.ARGS] + \
    [(name, f"{m},{s}") for name, schedules in (
        ("resnet20_cifar10_crimp", ("paper", "gpu", "tiny", "cpu")),
        ("resnet56_cifar10_crimp", ("paper", "gpu", "gpu_paper", "tiny", "cpu")),
        ("vgg16_cifar10_crimp", ("paper", "gpu", "gpu_paper", "tiny")))
     for m in ("fp", "q", "qp", "qv", "crimp") for s in schedules] + \
    [("tiny_crimp", m) for m in ("fp", "qp", "crimp,gpu_paper")] + \
    [("resnet20_cifar10", ""), ("resnet56_cifar10", ""), ("vgg16_cifar10", ""),
     ("vgg16_cifar10", "gpu")]


def test_base_config_is_the_dataclass_defaults():
    run = parse_config(base_config())
    for name, cls in BLOCKS.items():
        assert getattr(run, name) == cls(), name


def test_every_key_is_documented_and_the_reference_is_current():
    for name, cls in BLOCKS.items():
        docs = _attribute_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, (name, missing)
    assert (REPO / "docs" / "config.md").read_text() == reference_markdown(), \
        "docs/config.md is stale: python -m crimp_jax.config > docs/config.md"


@pytest.mark.parametrize("module, arg", SHIPPED)
def test_every_shipped_config_parses(module, arg):
    config = importlib.import_module(f"experiments.configs.{module}").get_config(arg)
    parse_config(config)


def test_converged_variants_change_their_base_row_only_where_they_say():
    base, t4 = (resnet20_converged.get_config(a) for a in ("crimp", "crimp_bnc_s20_t4"))
    assert (t4.variation.sigma, base.variation.sigma) == (0.4, 0.3)  # "variation.sigma"
    assert (t4.crimp.batchnorm, base.crimp.batchnorm) == ("corrected", "fold_per_step")
    stage = (t4.crimp.dense_epochs, t4.crimp.prune_epochs, t4.crimp.finetune_epochs)
    assert stage == (1, 8, 11)  # stage_recipe(c, 20)
    diff = {k for k, v in t4.crimp.items() if base.crimp[k] != v}
    assert diff == {"batchnorm", "prune_epochs", "finetune_epochs", "ramp_epochs",
                    "hold_epochs", "variation_start_epochs"}


def test_unknown_block_and_key_are_one_line_errors():
    c = base_config().to_dict()
    with pytest.raises(ConfigError, match=r"unknown config block\(s\) \['nope'\]; blocks are"):
        parse_config({**c, "nope": {}})
    with pytest.raises(ConfigError, match=r"unknown train key\(s\) \['epocs'\]"):
        parse_config({**c, "train": {**c["train"], "epocs": 3}})
    with pytest.raises(ConfigError, match=r"config lacks block\(s\) \['cost'\]"):
        parse_config({k: v for k, v in c.items() if k != "cost"})
