"""Entry point: python -m experiments.run --config=experiments/configs/<name>.py[:arg] --workdir=DIR

Intentionally short: all logic lives in `crimp_jax.train.pipeline.train_and_evaluate`.
Bad input (unknown model, misspelt config key, missing data, a workdir of another model) ends
with one line on stderr and exit status 2, before anything is compiled.
"""

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

from crimp_jax.data import DataError
from crimp_jax.train.checkpoint import CheckpointMismatchError
from crimp_jax.train.loop import NonFiniteLossError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (get_config(arg)).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and summary.json.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.getLogger("absl").setLevel(logging.WARNING)
    from crimp_jax.train.pipeline import train_and_evaluate

    try:
        summary = train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (ValueError, DataError, CheckpointMismatchError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    from crimp_jax.report_console import print_summary
    print_summary(summary)


if __name__ == "__main__":
    app.run(main)
