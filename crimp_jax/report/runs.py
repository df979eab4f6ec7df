"""One run = one workdir: its summary.json (required) and metrics.jsonl (optional).

summary.json keys may be absent or null where a stage did not run; readers use `Run.get` with a
dotted path ('accuracy.fake_quant') and treat None as "not in this run".
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Sequence


class MissingSummaryError(FileNotFoundError):
    """A workdir has no readable summary.json (the message names the workdir)."""


@dataclasses.dataclass
class Run:
    """A loaded workdir.

    name: short unique label used in tables, legends and file names (the workdir's base name,
      with '-2', '-3', ... added when two workdirs share one).
    summary: the parsed summary.json. metrics: metrics.jsonl records, in file order.
    notes: problems met while reading (e.g. a malformed metrics line), shown in the report.
    """

    name: str
    path: Path
    summary: dict
    metrics: list
    notes: list = dataclasses.field(default_factory=list)

    def get(self, dotted: str, default=None):
        """summary['a']['b'] for 'a.b'; `default` when any level is absent or null."""
        value = self.summary
        for key in dotted.split("."):
            if not isinstance(value, dict) or value.get(key) is None:
                return default
            value = value[key]
        return value

    @property
    def slug(self) -> str:
        """`name` reduced to characters safe in a file name."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)


def load_run(workdir, name: str | None = None) -> Run:
    """Reads `workdir`; raises MissingSummaryError (one line naming it) without summary.json."""
    path = Path(workdir)
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        why = "no such directory" if not path.is_dir() else "no summary.json in it"
        raise MissingSummaryError(f"workdir {str(path)!r}: {why} (has the run finished?)")
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as e:
        raise MissingSummaryError(f"workdir {str(path)!r}: summary.json is not valid JSON "
                                  f"({e})") from None
    if not isinstance(summary, dict):
        raise MissingSummaryError(f"workdir {str(path)!r}: summary.json holds a "
                                  f"{type(summary).__name__}, expected a JSON object")
    run = Run(name or path.resolve().name, path, summary, [])
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
