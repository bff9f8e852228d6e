"""Run folders: naming, atomic JSON, finding the latest complete run, resolving a model path."""

from __future__ import annotations

import json
import os
import time

import pytest

from digitlab.errors import RunError
from digitlab.runs import latest_run, new_run_dir, read_json, resolve_model, write_json


def make_run(out, name, state="complete", model=True):
    run = out / name
    run.mkdir(parents=True)
    write_json(run / "status.json", {"state": state})
    (run / "config.json").write_text("{}")
    if model:
        (run / "model.keras").write_bytes(b"zip")
    return run


def test_new_run_dirs_are_unique(tmp_path):
    a = new_run_dir(tmp_path, "mlp", "mnist")
    b = new_run_dir(tmp_path, "mlp", "mnist")
    assert a != b and a.name.endswith("-mlp-mnist") and b.name.endswith("-mlp-mnist-2")


def test_latest_complete_run_is_chosen(tmp_path):
    old = make_run(tmp_path, "a")
    os.utime(old / "status.json", (time.time() - 100, time.time() - 100))
    new = make_run(tmp_path, "b")
    make_run(tmp_path, "c", state="training")  # newer, but not finished
    make_run(tmp_path, "d", model=False)
    assert latest_run(tmp_path) == new
    assert resolve_model(None, tmp_path) == (new / "model.keras", new)


def test_resolve_paths(tmp_path):
    run = make_run(tmp_path, "r")
    assert resolve_model(run) == (run / "model.keras", run)
    assert resolve_model(run / "model.keras") == (run / "model.keras", run)
    loose = tmp_path / "loose.keras"
    loose.write_bytes(b"zip")
    assert resolve_model(loose) == (loose, None)


@pytest.mark.parametrize(
    "setup, phrase",
    [
        (lambda p: p / "missing", "no such run folder or model file"),
        (lambda p: (p / "x.h5").write_bytes(b"") or p / "x.h5", "not a model file; expected a run folder, a .keras"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "not a run folder"),
    ],
)
def test_resolve_errors(tmp_path, setup, phrase):
    with pytest.raises(RunError, match=phrase):
        resolve_model(setup(tmp_path))


def test_no_runs_yet(tmp_path):
    with pytest.raises(RunError, match='no complete run in .*digitlab train'):
        latest_run(tmp_path)


def test_json_round_trip_leaves_no_temporary_file(tmp_path):
    write_json(tmp_path / "m.json", {"a": 1})
    assert read_json(tmp_path / "m.json") == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_open_run_reads_the_config_once_and_the_run_files_on_demand(tmp_path):
    from digitlab.config import RunConfig
    from digitlab.runs import open_run

    run = make_run(tmp_path, "r")
    RunConfig(model="cnn", dataset="fashion-mnist").save(run / "config.json")
    write_json(run / "calibration.json", {"temperature": 1.5})
    write_json(run / "metrics.json", {"test_accuracy": 0.9})
    opened = open_run(None, tmp_path)
    assert (opened.model, opened.folder) == (run / "model.keras", run)
    assert (opened.preset, opened.dataset, opened.temperature) == ("cnn", "fashion-mnist", 1.5)
    assert opened.read("metrics.json") == {"test_accuracy": 0.9} and opened.read("history.json") is None
    bare = tmp_path / "elsewhere" / "m.keras"
    bare.parent.mkdir()
    bare.write_bytes(b"zip")
    alone = open_run(bare)
    assert (alone.folder, alone.config, alone.preset, alone.dataset, alone.temperature) == (None, None, None, "mnist", None)
    assert alone.read("metrics.json") is None


def test_open_run_names_a_broken_config(tmp_path):
    from digitlab.errors import ConfigError
    from digitlab.runs import open_run

    run = make_run(tmp_path, "r")
    (run / "config.json").write_text('{"nb_epoch": 3}')
    with pytest.raises(ConfigError, match="unknown configuration field.*nb_epoch"):
        open_run(run)


@pytest.mark.parametrize("temperature", [-1, 0, "abc", {}, [1], None, True, 1e9, float("nan")])
def test_a_tampered_calibration_is_refused_not_applied(tmp_path, temperature):
    """Issue 22: a temperature of -1 read a 7 as "6 98.7%"; "abc", {} and [1] gave tracebacks."""
    from digitlab.runs import run_temperature

    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": temperature}))
    with pytest.raises(RunError, match=r'calibration.json: "temperature" is .*not a number from 0.01 to 100'):
        run_temperature(tmp_path)
    write_json(tmp_path / "calibration.json", {"temperature": 1.3})
    assert run_temperature(tmp_path) == 1.3


def test_a_run_being_trained_cannot_be_resumed_by_a_second_process_until_the_first_dies(tmp_path):
    """Two `train --resume` of one run (or a resume of a run still training) both trained it, writing
    the same checkpoints at once; the lock is the kernel's, so a SIGKILLed trainer leaves none."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from digitlab.config import RunConfig
    from digitlab.errors import RunError
    from digitlab.lab.pipeline import resume
    from digitlab.runs import training_lock

    run = tmp_path / "run"
    run.mkdir()
    RunConfig(epochs=2).save(run / "config.json")
    code = (f"import time; from pathlib import Path; from digitlab.runs import training_lock\n"
            f"with training_lock(Path({str(run)!r})):\n    print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match="another digitlab process is training this run now"):
            resume(run)
        with pytest.raises(RunError, match="another digitlab process"):
            with training_lock(run):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    with training_lock(run):  # released by the kernel with the killed process
        pass
    with pytest.raises(RunError, match="no checkpoint"):  # past the lock, to the run's own state
        resume(run)
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_a_file_system_without_locks_trains_unlocked_rather_than_not_at_all(tmp_path, monkeypatch):
    import errno
    import fcntl

    from digitlab.config import RunConfig
    from digitlab.runs import training_lock

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    RunConfig().save(tmp_path / "config.json")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with training_lock(tmp_path):
        pass
