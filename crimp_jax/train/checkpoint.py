"""Orbax checkpoints per training stage, plus a run identity file checked before any compile."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
    """The workdir holds checkpoints of a different run (model, dataset shape...)."""


def check_run_identity(workdir: Path, identity: dict, write: bool = True) -> None:
    """Writes `run_identity.json` on first use (unless `write` is False: then only checks);
    on resume refuses a workdir of another model."""
    path = Path(workdir) / "run_identity.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointMismatchError(f"{path} is corrupt ({e}); use a fresh --workdir") from e
        diff = {k: (old.get(k), v) for k, v in identity.items() if old.get(k) != v}
        if diff:
            what = ", ".join(f"{k}: workdir has {a!r}, config has {b!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatchError(
                f"--workdir={workdir} holds a checkpoint of a different run ({what}); "
                f"use another --workdir or delete it")
        return
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(identity, indent=1, sort_keys=True))


class StageCheckpointer:
    """Saves/restores a TrainState pytree under workdir/checkpoints/<stage>/<step>."""

    def __init__(self, workdir: Path, stage: str, max_to_keep: int = 2):
        self.directory = (Path(workdir) / "checkpoints" / stage).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                                 create=True))

    def latest_step(self):
        return self.manager.latest_step()

    def save(self, step: int, state) -> None:
        self.manager.save(int(step), args=ocp.args.StandardSave(state))
        self.manager.wait_until_finished()

    def restore(self, state_like, step: int | None = None):
        """Restores into the structure, dtypes and shardings of `state_like`."""
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # noqa: BLE001 - orbax raises many types for a bad checkpoint
            raise CheckpointMismatchError(
                f"checkpoint {self.directory}/{step} does not match this run's state "
                f"({type(e).__name__}: {str(e)[:300]}); use another --workdir") from e

    def close(self):
        self.manager.close()
