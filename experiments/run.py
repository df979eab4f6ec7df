"""Entry point: python -m experiments.run --config=experiments/configs/<name>.py[:arg] [--workdir=DIR]

Without --workdir a run writes to runs/<name>[_<arg>] (e.g. runs/quickstart,
runs/resnet20_proxy_qp50). Intentionally short: it calls the library API, `crimp_jax.api.run`.
Bad input (a wrong value for any config key, an unknown key or block, a malformed override,
missing data, a workdir of another model, a corrupt checkpoint) ends with one `error:` line on
stderr and exit status 2, before any data load or compile where the input allows it.
"""

import logging
import re
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from experiments.cli import EXPECTED, fail, flag_error_message

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (get_config(arg)).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and summary.json "
                    "(default: runs/<config name>[_<arg>]).")

def config_spec(argv) -> str:
    """The value of --config in `argv` ('' if absent)."""
    spec = ""
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            spec = a.split("=", 1)[1]
        elif a == "--config" and i + 1 < len(argv):
            spec = argv[i + 1]
    return spec


def config_file_error(argv) -> str:
    """One line for a --config file that could not be loaded (missing, a folder, unreadable)."""
    path = Path(config_spec(argv).partition(":")[0])
    if not path.exists():
        what = "no such file"
    elif path.is_dir():
        what = "a folder, not a config file"
    else:
        what = "not readable"
    return (f"--config={config_spec(argv)}: {path}: {what}; expected a Python file with "
            f"get_config(arg), e.g. --config=experiments/configs/quickstart.py (paths are "
            f"relative to {Path.cwd()})")


def default_workdir(argv) -> str:
    """runs/<config file stem>[_<arg>] for the --config argument in `argv`."""
    path, _, arg = config_spec(argv).partition(":")
    name = Path(path).stem + (f"_{arg}" if arg else "")
    return str(Path("runs") / re.sub(r"[^A-Za-z0-9_.-]+", "_", name))


def parse_flags(argv):
    """absl flag parsing where every failure is one `error:` line and exit status 2."""
    try:
        rest = FLAGS(argv)
        if FLAGS.config is None:
            fail("--config is required: python -m experiments.run "
                 "--config=experiments/configs/<name>.py[:arg] [--workdir=DIR]")
        if type(FLAGS.config).__name__ == "_ErrorConfig":  # ml_collections defers the error
            fail(config_file_error(argv))
        if FLAGS.workdir is None:
            FLAGS.workdir = default_workdir(argv)
        return rest
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - config files and overrides raise many types
        fail(flag_error_message(e, argv))


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}: overrides are --config.BLOCK.KEY=VALUE")
    logging.getLogger("absl").setLevel(logging.WARNING)
    from crimp_jax import api

    logging.getLogger(__name__).info("workdir: %s", FLAGS.workdir)
    try:
        summary = api.run(config=FLAGS.config, workdir=FLAGS.workdir)
    except EXPECTED as e:
        fail(str(e))
    from crimp_jax.report_console import print_summary
    print_summary(summary)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
