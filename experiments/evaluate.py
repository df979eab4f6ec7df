"""Re-evaluate a finished run under other chip settings, without training:

    python -m experiments.evaluate --workdir=runs/quickstart [--out=DIR] \
        [--config.variation.sigma=0.3 --config.adc.bits=5 --config.evaluate.chips=20 ...]

Restores the run's deployed network (`crimp_jax.train.finished`), applies the overrides to the
config the run recorded, and runs the Monte Carlo evaluation (and the sweeps the `evaluate`
block asks for) into DIR (default: WORKDIR/evaluate/<the overrides>): evaluation.json (the
`montecarlo` section of a summary, with the command, the device, the date and the overrides)
and its figures; with `evaluate.engine` (on unless the run turned it off; a crossbar-faithful
check of ResNet-20 on 10,000 images takes about 30 minutes on 2 CPU cores) also the integer
artifact under the new settings, DIR/model_int.npz, and its check against fake quantization
on the whole test set (evaluation.json's `engine`); `--config.evaluate.chips=0` checks the
engine alone (no Monte Carlo). The run's own files are not touched. Only
chip and evaluation settings may change (blocks: variation, adc, dac, evaluate, cost);
anything that changes the trained network is refused in one line. Bad input ends with one
`error:` line and exit status 2. A run trained on a researcher's own module and arrays
(`crimp_jax.api.run`) is re-evaluated from Python with that module and data,
`crimp_jax.api.reevaluate(MyNet(), WORKDIR, {"adc.bits": 5}, data=splits)`; here it is refused
in one line before any data is loaded.
"""

import logging
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from experiments.cli import EXPECTED, fail, flag_error_message

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "(set from --workdir)", lock_config=True)
flags.DEFINE_string("workdir", None, "The finished run's workdir.")
flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/evaluate/<overrides>).")

FROM_WORKDIR = Path(__file__).resolve().parent / "configs" / "from_workdir.py"


def overrides(argv) -> list:
    """The --config.BLOCK.KEY=VALUE arguments of `argv`."""
    return [a for a in argv if a.startswith("--config.")]


def parse_flags(argv):
    from crimp_jax.train.finished import check_chip_block

    workdir = next((a.split("=", 1)[1] for a in argv if a.startswith("--workdir=")), None)
    if workdir is None:
        fail("--workdir=DIR is required: the workdir of a finished run")
    if not (Path(workdir) / "summary.json").is_file():
        fail(f"--workdir={workdir}: no summary.json in it; expected the workdir of a finished "
             f"run")
    if any(a == "--config" or a.startswith("--config=") for a in argv):
        fail("--config is read from --workdir; change settings with --config.BLOCK.KEY=VALUE")
    for a in overrides(argv):
        try:
            check_chip_block(a.removeprefix("--config.").split(".", 1)[0].split("=", 1)[0], a)
        except ValueError as e:
            fail(str(e))
    argv = [argv[0], f"--config={FROM_WORKDIR}:{workdir}"] + argv[1:]
    try:
        rest = FLAGS(argv)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - config files and overrides raise many types
        fail(flag_error_message(e, argv))
    if type(FLAGS.config).__name__ == "_ErrorConfig":
        fail(f"--workdir={workdir}: no summary.json in it; expected the workdir of a "
             f"finished run")
    return rest


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}: overrides are --config.BLOCK.KEY=VALUE")
    logging.getLogger("absl").setLevel(logging.WARNING)
    from crimp_jax.train.finished import default_out, reevaluate
    from crimp_jax.train.pipeline import command_line

    changes = [a.removeprefix("--config.") for a in overrides(sys.argv[1:])]
    out = Path(FLAGS.out) if FLAGS.out else default_out(FLAGS.workdir, changes)
    record = {"overrides": overrides(sys.argv[1:]),
              "command": command_line(["python", "-m", "experiments.evaluate"] + sys.argv[1:])}
    try:
        result = reevaluate(FLAGS.config, FLAGS.workdir, out, record)
    except EXPECTED as e:
        fail(str(e))
    mc, eng = result["montecarlo"], result["engine"]
    if eng is not None:
        print(f"integer engine: {100 * eng['integer_engine']:.2f}% on {eng['test_images']} test "
              f"images, exact logits {eng['engine_exact_logits']:.4f} "
              f"({out / eng['artifact']})")
    elif not FLAGS.config.evaluate.engine:
        print("integer engine: not checked (evaluate.engine=False, as the run had it or as "
              "asked; --config.evaluate.engine=True writes the integer artifact for these "
              "settings)")
    for curve, per_sigma in (mc["curves"] if mc else {}).items():
        cells = "  ".join(f"sigma {s}: {100 * st['mean']:.2f} +/- {100 * st['std']:.2f}"
                          for s, st in per_sigma.items())
        print(f"{curve}: {cells}")
    print(f"written: {out / 'evaluation.json'}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
