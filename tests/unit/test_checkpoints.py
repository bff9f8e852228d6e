"""Checkpoints: written whole, and read back only as digitlab writes them (a run folder may be anyone's)."""

from __future__ import annotations

import json

import pytest

from digitlab.errors import RunError
from digitlab.training import checkpoints


def save_epoch(run_dir, epoch, suffix=".npz"):
    history = {"loss": [1.0 / e for e in range(1, epoch + 1)]}
    checkpoints.save(run_dir, epoch, history, lambda path: path.write_bytes(b"state"), suffix, {"iterations": 10 * epoch})


def test_each_checkpoint_replaces_the_last_and_remove_leaves_the_folder_clean(tmp_path):
    save_epoch(tmp_path, 1)
    save_epoch(tmp_path, 2)
    loaded = checkpoints.load(tmp_path, epochs=5)
    assert (loaded.epoch, loaded.state_file.name, loaded.extra) == (2, "checkpoint-epoch2.npz", {"iterations": 20})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-epoch2.npz", "checkpoint.json"]
    checkpoints.remove(tmp_path)
    assert list(tmp_path.iterdir()) == []


def tamper(run_dir, **fields):
    path = run_dir / checkpoints.CHECKPOINT_JSON
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("state", ["/etc/passwd", "../outside.txt", "sub/checkpoint-epoch2.npz", "checkpoint-epoch2.py",
                                   "checkpoint-epoch2.npz/..", 7, None])
def test_a_state_outside_the_run_is_refused_and_nothing_outside_is_deleted(tmp_path, state):
    """Issue 22: `state` was joined to the run folder unchecked, and the finished resume unlinked it."""
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "outside.txt"
    victim.write_text("keep me")
    save_epoch(run, 2)
    tamper(run, state=str(victim) if state == "/etc/passwd" else state)
    with pytest.raises(RunError, match=r"checkpoint.json: \"state\" is .* not a checkpoint file in the run folder"):
        checkpoints.load(run, epochs=5)
    checkpoints.remove(run)  # what a finished run does: it must not follow the tampered name
    assert victim.read_text() == "keep me" and (run / "checkpoint-epoch2.npz").is_file()


@pytest.mark.parametrize("fields, phrase", [
    ({"epoch": 100, "state": "checkpoint-epoch100.npz"}, "more than the run's 40 epochs"),
    ({"epoch": -3}, '"epoch" is -3'),
    ({"epoch": "2"}, '"epoch" is \'2\''),
    ({"epoch": True}, '"epoch" is True'),
    ({"epoch": 3}, "is not the state of epoch 3"),
    ({"history": {"loss": [1.0]}}, "does not hold 2 numbers per metric"),
    ({"history": {"loss": ["a", "b"]}}, "does not hold 2 numbers"),
    ({"history": [1, 2]}, "does not hold 2 numbers"),
    ({"iterations": -1}, '"iterations" is -1'),
])
def test_every_field_is_checked_with_one_line(tmp_path, fields, phrase):
    save_epoch(tmp_path, 2)
    (tmp_path / "checkpoint-epoch100.npz").write_bytes(b"state")
    tamper(tmp_path, **fields)
    with pytest.raises(RunError, match=phrase):
        checkpoints.load(tmp_path, epochs=40)


def test_a_checkpoint_that_is_not_an_object_is_refused(tmp_path):
    (tmp_path / checkpoints.CHECKPOINT_JSON).write_text("[1, 2]")
    with pytest.raises(RunError, match="not a JSON object"):
        checkpoints.load(tmp_path)
    checkpoints.remove(tmp_path)
    assert list(tmp_path.iterdir()) == []
