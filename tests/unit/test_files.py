"""digitlab.files: every file is written whole or not at all."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.files import atomic_write, write_bytes, write_json, write_text


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    write_text(tmp_path / "page.html", "<p>")
    write_bytes(tmp_path / "blob.bin", b"\x00\x01")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "metrics.json", "page.html"]


@pytest.mark.parametrize("interruption", [ValueError("a bad value"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, interruption):
    target = tmp_path / "history.csv"
    target.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(type(interruption)):
        with atomic_write(target) as tmp:
            tmp.write_text("epoch,lo")  # half written when it fails
            raise interruption
    assert target.read_text() == "epoch,loss\n1,0.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


def test_the_temporary_name_is_hidden_unique_and_keeps_the_suffix(tmp_path):
    """Keras' model.save wants '.keras' and NumPy's savez appends '.npz' to any other name."""
    names = []
    for _ in range(2):
        with atomic_write(tmp_path / "inference.npz") as tmp:
            names.append(tmp.name)
            np.savez(tmp, a=np.arange(3))
    assert all(n.startswith(".inference.") and n.endswith(".tmp.npz") for n in names) and names[0] != names[1]
    with np.load(tmp_path / "inference.npz") as data:
        assert list(data["a"]) == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["inference.npz"]


def test_check_writable_leaves_nothing_and_changes_nothing(tmp_path):
    from digitlab.files import check_writable

    check_writable(tmp_path / "new.md")
    (tmp_path / "old.md").write_text("kept")
    check_writable(tmp_path / "old.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.md"] and (tmp_path / "old.md").read_text() == "kept"
