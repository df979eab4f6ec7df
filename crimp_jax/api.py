"""The library API: the whole CRIMP chain on a researcher's own Flax network.

    import crimp_jax.api as cj

    splits = cj.splits_from_arrays((x_train, y_train), (x_test, y_test))   # uint8 images
    config = cj.base_config()            # every block's documented defaults (docs/config.md)
    config.method = "crimp"
    config.prune.exclude = ("Conv_0/", "Dense_0/")   # layer names: cj.network(...).graph
    summary = cj.run(MyNet(), config, "runs/mynet", data=splits)

`run` takes a flax module (linen, or an NNX model instance; or a `Network`, or None for the
registered `model.name`), the data
(`Splits`, or None for the config's `data` block: any tensorflow-datasets name, offline
CIFAR-10, or the synthetic source) and optionally the module's trained float variables
(`variables=`, with `train.epochs=0`) instead of float training. It trains the float model,
runs the CRIMP stage (power-of-two QAT, crossbar-aligned pruning, variation-aware training),
writes the integer artifact and checks the integer engine against it, runs Monte Carlo over
chips and the cost model, and returns the summary it wrote to `<workdir>/summary.json`.
`python -m experiments.run --config=...` is this same call on a config file.

`reevaluate` reads a finished run again under other chip settings, without training and
without touching the run's files (`python -m experiments.evaluate` for registered models):

    cj.reevaluate(MyNet(), "runs/mynet", {"adc.bits": 5, "variation.sigma": 0.5}, data=splits)

The module maps normalised float images (N, H, W, C) to logits and is built from the ops of
`crimp_jax.graph.ops` (nn.Conv, nn.Dense, nn.BatchNorm, ReLU, max/average pooling, global
average pooling, flatten, residual adds with identity, option-A or projection shortcuts);
anything else is refused before training with the module path and the op.
"""

from __future__ import annotations

from crimp_jax.config import base_config, lock
from crimp_jax.data import Splits, splits_from_arrays
from crimp_jax.graph import Graph, GraphError, Network


def network(module, splits: Splits, name: str = "", train_arg: str | None = "auto") -> Network:
    """`Network` of `module` for the data of `splits` (its image shape and channel
    statistics); `network(...).graph.describe()` lists the layers and their names.
    train_arg: the module's train flag ('auto': found in its signature; None: it has none)."""
    info = splits.info
    return Network(module, info.image_shape, info.mean_int, info.std,
                   name or type(module).__name__, train_arg)


def run(model=None, config=None, workdir: str = "runs/api", *, data: Splits | None = None,
        variables=None, stop_after_epoch: int | None = None) -> dict:
    """The whole chain (see module docstring); returns the run's summary."""
    from crimp_jax.train.pipeline import train_and_evaluate

    config = base_config() if config is None else config
    return train_and_evaluate(config, workdir, stop_after_epoch, network=model, data=data,
                              variables=variables)


def reevaluate(model, workdir: str, changes: dict | None = None, out: str | None = None, *,
               data: Splits | None = None) -> dict:
    """The finished run in `workdir` evaluated again under `changes` {'block.key': value}
    (chip and evaluation settings: blocks variation, adc, dac, evaluate, cost; e.g.
    {'adc.bits': 5, 'evaluate.chips': 20}), without training: the Monte Carlo table and, with
    `evaluate.engine` (the run's setting unless changed), the integer artifact for those
    settings checked against the fake-quantized model. `model` and `data`: the module and the
    splits `run` trained on (a fresh instance: the weights come from the run's checkpoint;
    None: the registered `model.name`, the config's data block). Writes `out` (default
    `workdir`/evaluate/<changes>)/evaluation.json and returns its content; the run's own files
    are not touched. A network or data other than the run's is refused before anything is
    restored."""
    from crimp_jax.train import finished
    from crimp_jax.train.pipeline import command_line

    changes = dict(changes or {})
    config = finished.with_changes(finished.recorded_config(workdir), changes)
    pairs = [f"{k}={v}" for k, v in changes.items()]
    out = finished.default_out(workdir, pairs) if out is None else out
    record = {"overrides": [f"--config.{p}" for p in pairs], "command": command_line()}
    return finished.reevaluate(config, workdir, out, record, network=model, data=data)


__all__ = ["base_config", "lock", "splits_from_arrays", "Splits", "Graph", "GraphError",
           "Network", "network", "run", "reevaluate"]
