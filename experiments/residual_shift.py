"""What `quant.max_residual_shift` does to a finished run: how many residual-branch layers its
floor moves, and the fake-quantized test accuracy, at each shift limit.

    python -m experiments.residual_shift --config=experiments/configs/quickstart.py \
        --workdir=runs/quickstart [--shifts=4,8,12,16,20]

Restores the run's final second-stage state (read only: nothing in the workdir is written),
then for each limit K re-derives the weight exponents (`quant.fake.weight_exponents`) of the
deployed folded network and evaluates it fake-quantized on the whole test split. A layer is
"floored" where its exponent with the limit is coarser than without any floor. Prints one JSON
line per limit. The weights are those trained with the run's own limit; a limit that floors
no layer gives that run's network exactly.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "The run's config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "The finished run's workdir.")
flags.DEFINE_list("shifts", ["4", "8", "12", "16", "20"], "quant.max_residual_shift values.")


def shift_report(run, models, params, qstate, test, shifts) -> list:
    """One dict per limit: floored layers (of the residual branches) and test accuracy."""
    from crimp_jax.evaluate import plain_accuracy
    from crimp_jax.quant import fake_quant_apply, make_plan
    from crimp_jax.quant.fake import weight_exponents

    graph = models.folded
    base = make_plan(graph, run.quant)
    free = weight_exponents(dataclasses.replace(base, partners={}), params, qstate)
    rows = []
    for k in shifts:
        spec = dataclasses.replace(run.quant, max_residual_shift=int(k))
        exps = weight_exponents(make_plan(graph, spec), params, qstate)
        floored = sorted(p for p in base.partners
                         if bool(jnp.any(jnp.asarray(exps[p]) > jnp.asarray(free[p]))))
        acc = plain_accuracy(lambda p, x, spec=spec: fake_quant_apply(graph, *p, x, spec),
                             (params, qstate), test.images, test.labels, batch_size=500)
        rows.append({"max_residual_shift": int(k), "branch_layers": len(base.partners),
                     "floored": floored, "test_accuracy": acc,
                     "test_images": len(test.labels)})
    return rows


def main(argv):
    del argv
    from crimp_jax.train.finished import load_finished
    from crimp_jax.train.pipeline import command_line, device_description

    done = load_finished(FLAGS.config, FLAGS.workdir)
    dev = device_description()
    for row in shift_report(done.run, done.models, done.params, done.qstate, done.test,
                            FLAGS.shifts):
        row.update(workdir=FLAGS.workdir, device=dev["kind"],
                   command=command_line(["python", "-m", "experiments.residual_shift"]
                                        + sys.argv[1:]))
        print(json.dumps(row))
        sys.stdout.flush()


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
