"""The config a finished run recorded: get_config(WORKDIR) reads WORKDIR/summary.json.

`python -m experiments.evaluate --workdir=DIR` loads it through this file, so the usual
`--config.BLOCK.KEY=VALUE` overrides apply to the run's own settings.
"""

import json
from pathlib import Path

from crimp_jax.config import config_from_dict, lock


def get_config(workdir: str = ""):
    path = Path(workdir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"--workdir={workdir}: no summary.json in it; expected the workdir of "
                         f"a finished run")
    return lock(config_from_dict(json.loads(path.read_text())["config"]))
