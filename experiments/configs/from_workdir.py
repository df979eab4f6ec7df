"""The config a finished run recorded: get_config(WORKDIR) reads WORKDIR/summary.json.

`python -m experiments.evaluate --workdir=DIR` loads it through this file, so the usual
`--config.BLOCK.KEY=VALUE` overrides apply to the run's own settings.
"""

from pathlib import Path

from crimp_jax.train.finished import recorded_config


def get_config(workdir: str = ""):
    path = Path(workdir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"--workdir={workdir}: no summary.json in it; expected the workdir of "
                         f"a finished run")
    return recorded_config(workdir)
