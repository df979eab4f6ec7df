"""One run = one workdir: its summary.json (required, read by `crimp_jax.summary`) and
metrics.jsonl (optional)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Sequence

from crimp_jax.summary import Summary, read_summary


@dataclasses.dataclass
class Run:
    """A loaded workdir.

    name: short unique label used in tables, legends and file names (the workdir's base name,
      with '-2', '-3', ... added when two workdirs share one).
    summary: the run's `Summary`. metrics: metrics.jsonl records, in file order.
    notes: problems met while reading (e.g. a malformed metrics line), shown in the report.
    """

    name: str
    path: Path
    summary: Summary
    metrics: list
    notes: list = dataclasses.field(default_factory=list)

    def get(self, dotted: str, default=None):
        """The summary's value at a dotted path ('accuracy.fake_quant'); see `Summary.get`."""
        return self.summary.get(dotted, default)

    @property
    def slug(self) -> str:
        """`name` reduced to characters safe in a file name."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)


def load_run(workdir, name: str | None = None) -> Run:
    """Reads `workdir`; raises SummaryError (one line naming it) without a readable summary."""
    path = Path(workdir)
    run = Run(name or path.resolve().name, path, read_summary(path), [])
    metrics_path = path / "metrics.jsonl"
    if metrics_path.is_file():
        for i, line in enumerate(metrics_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                run.notes.append(f"metrics.jsonl line {i} is not valid JSON; skipped")
                continue
            if isinstance(record, dict):
                run.metrics.append(record)
    return run


def load_runs(workdirs: Sequence) -> list:
    """Runs of `workdirs` in the given order, with unique names."""
    runs, seen = [], {}
    for workdir in workdirs:
        base = Path(workdir).resolve().name or str(workdir)
        seen[base] = seen.get(base, 0) + 1
        runs.append(load_run(workdir, base if seen[base] == 1 else f"{base}-{seen[base]}"))
    return runs
