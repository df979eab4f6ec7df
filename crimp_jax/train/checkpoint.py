"""Orbax checkpoints per training stage, plus a run identity file checked before any compile.

Every saved checkpoint gets a digest (sha256 of each of its files, `checkpoints/<stage>.digests/
<step>.json`), so damage on disk is found before a restore rather than read as weights. A
resumed stage restores its newest intact checkpoint: a damaged newer one is moved aside (to
`checkpoints/<stage>.damaged/`, never deleted) with one log line naming the step the run
resumes from; only when no checkpoint of the stage is intact is the run refused, naming the
folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class CheckpointMismatchError(ValueError):
    """The workdir holds checkpoints of a different run (model, dataset shape...) or none of
    a stage's checkpoints is intact."""


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


def folder_digest(folder: Path) -> dict:
    """{relative path: sha256} of every file under `folder`."""
    out = {}
    for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        out[f.relative_to(folder).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


class StageCheckpointer:
    """Saves/restores a TrainState pytree under workdir/checkpoints/<stage>/<step>."""

    def __init__(self, workdir: Path, stage: str, max_to_keep: int = 2):
        self.directory = (Path(workdir) / "checkpoints" / stage).absolute()
        self.digests = self.directory.with_name(f"{stage}.digests")
        self.damaged = self.directory.with_name(f"{stage}.damaged")
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                                 create=True))

    def latest_step(self):
        return self.manager.latest_step()

    def save(self, step: int, state) -> None:
        self.manager.save(int(step), args=ocp.args.StandardSave(state))
        self.manager.wait_until_finished()
        self.digests.mkdir(parents=True, exist_ok=True)
        (self.digests / f"{int(step)}.json").write_text(
            json.dumps(folder_digest(self.directory / str(int(step))), indent=0))
        kept = {str(s) for s in self.manager.all_steps()}
        for f in self.digests.glob("*.json"):  # digests of checkpoints orbax rotated out
            if f.stem not in kept:
                f.unlink()

    def damage(self, step: int) -> str | None:
        """What is wrong with checkpoint `step` on disk (files differing from its digest), or
        None when it matches (or was saved without a digest)."""
        digest_file = self.digests / f"{int(step)}.json"
        if not digest_file.is_file():
            return None
        try:
            want = json.loads(digest_file.read_text())
        except (OSError, json.JSONDecodeError) as e:
            return f"its digest {digest_file} is unreadable ({e})"
        have = folder_digest(self.directory / str(int(step)))
        bad = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        return f"{len(bad)} file(s) differ from the digest saved with it, e.g. {bad[0]}" if bad \
            else None

    def _restore_or_fault(self, state_like, step: int):
        """(state, None), or (None, what is wrong with checkpoint `step`)."""
        damage = self.damage(step)
        if damage:
            return None, f"is damaged ({damage})"
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore(abstract)), None
        except Exception as e:  # noqa: BLE001 - orbax raises many types for a bad checkpoint
            return None, (f"does not match this run's state ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:300]})")

    def restore(self, state_like, step: int | None = None):
        """Restores into the structure, dtypes and shardings of `state_like`."""
        step = self.latest_step() if step is None else step
        state, fault = self._restore_or_fault(state_like, step)
        if fault:
            raise CheckpointMismatchError(f"checkpoint {self.directory}/{step} {fault}; use "
                                          f"another --workdir")
        return state

    def restore_newest_intact(self, state_like):
        """(state, step) of the newest checkpoint that restores intact, or (None, None) when
        the stage has none. Damaged newer checkpoints are moved to `<stage>.damaged/` (so the
        stage can save those steps again), each with one warning; if none restores, a
        `CheckpointMismatchError` names the folder and every step's fault, and nothing moves."""
        faults = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            state, fault = self._restore_or_fault(state_like, step)
            if fault:
                faults.append((step, fault))
                continue
            for bad, why in faults:
                self._move_aside(bad, why, step)
            return state, step
        if not faults:
            return None, None
        raise CheckpointMismatchError(
            f"no intact checkpoint in {self.directory} ("
            + "; ".join(f"step {s}: {why}" for s, why in faults)
            + "); use another --workdir (nothing was deleted)")

    def _move_aside(self, step: int, why: str, resume_step: int) -> None:
        self.damaged.mkdir(parents=True, exist_ok=True)
        target = self.damaged / str(step)
        n = 1
        while target.exists():
            target, n = self.damaged / f"{step}.{n}", n + 1
        shutil.move(str(self.directory / str(step)), str(target))
        digest = self.digests / f"{step}.json"
        if digest.is_file():
            shutil.move(str(digest), str(target.with_name(target.name + ".digest.json")))
        self.manager.reload()
        log.warning("checkpoint %s/%d %s; moved to %s, resuming from step %d", self.directory,
                    step, why, target, resume_step)

    def close(self):
        self.manager.close()
