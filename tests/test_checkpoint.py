"""Stage checkpoints (`crimp_jax.train.checkpoint`): a damaged newest checkpoint falls back to
the newest intact one, moved aside and never deleted; with none intact the stage is refused,
naming the folder. (The whole-run case, a resumed run equal to an uninterrupted one after the
fallback, is `tests/test_train.py::test_resume_equals_uninterrupted_run`.)"""

import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.train.checkpoint import CheckpointMismatchError, StageCheckpointer


def _state(scale):
    return {"step": jnp.int32(scale), "w": jnp.arange(300.0) * scale, "b": {"c": jnp.ones(7)}}


def damage_checkpoint(folder):
    """Inverts the middle bytes of every data file of one orbax step folder (sizes unchanged)."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, folder
    for p in files:
        raw = bytearray(p.read_bytes())
        mid = len(raw) // 2
        raw[mid:mid + 16] = bytes(255 - b for b in raw[mid:mid + 16])
        p.write_bytes(bytes(raw))


def _saved(tmp_path, steps=(4, 8)):
    ck = StageCheckpointer(tmp_path, "fp")
    for s in steps:
        ck.save(s, _state(s))
    return ck


def test_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, caplog):
    ck = _saved(tmp_path)
    assert ck.damage(8) is None and ck.damage(4) is None
    damage_checkpoint(ck.directory / "8")
    assert "differ from the digest" in ck.damage(8)
    caplog.set_level("WARNING")
    state, step = ck.restore_newest_intact(_state(0))
    assert step == 4 and int(state["step"]) == 4
    np.testing.assert_array_equal(state["w"], np.arange(300.0) * 4)
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "checkpoints/fp/8 is damaged" in line and "resuming from step 4" in line
    # Moved aside, not deleted; the stage can save step 8 again and read it back.
    assert (tmp_path / "checkpoints" / "fp.damaged" / "8").is_dir()
    assert ck.manager.all_steps() == [4]
    ck.save(8, _state(8))
    state, step = ck.restore_newest_intact(_state(0))
    assert step == 8 and int(state["step"]) == 8
    ck.close()


def test_no_intact_checkpoint_refuses_naming_the_folder_and_moves_nothing(tmp_path):
    ck = _saved(tmp_path)
    for s in (4, 8):
        damage_checkpoint(ck.directory / str(s))
    with pytest.raises(CheckpointMismatchError) as e:
        ck.restore_newest_intact(_state(0))
    msg = str(e.value)
    assert f"no intact checkpoint in {ck.directory}" in msg
    assert "step 8:" in msg and "step 4:" in msg and "--workdir" in msg and "\n" not in msg
    assert ck.manager.all_steps() == [4, 8]  # nothing moved or deleted
    assert not (tmp_path / "checkpoints" / "fp.damaged").exists()
    ck.close()


def test_a_checkpoint_of_another_state_is_refused_not_moved(tmp_path):
    """A checkpoint that is intact but of another structure (another run in the workdir) is
    not damage: it is refused by step, and kept."""
    ck = _saved(tmp_path, steps=(4,))
    with pytest.raises(CheckpointMismatchError, match="no intact checkpoint .*step 4: "):
        ck.restore_newest_intact({"other": jnp.zeros(3)})
    assert ck.manager.all_steps() == [4]
    ck.close()


def test_no_checkpoint_is_a_fresh_start(tmp_path):
    ck = StageCheckpointer(tmp_path, "fp")
    assert ck.restore_newest_intact(_state(0)) == (None, None)
    ck.close()
