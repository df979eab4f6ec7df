"""Metrics sinks: JSON lines (always) and TensorBoard (tensorboardX, if installed)."""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricWriter:
    """Appends one JSON object per record to `metrics.jsonl`; mirrors scalars to TensorBoard."""

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(str(Path(workdir) / "tb"))
        except ImportError:  # TensorBoard is optional
            self._tb = None

    def write(self, step: int, **scalars):
        record = {"step": int(step), "time": time.time(), **scalars}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self):
        if self._tb is not None:
            self._tb.close()
