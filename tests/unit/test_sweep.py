"""The parts of a cluster sweep that need no cluster: what an attempt runs (a new run, or the last
one resumed), how failed trials are marked, and that a training dies with its trial's process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from digitlab.cluster.sweep import Trial, mark_failed, runs_in, train_command
from digitlab.files import write_json
from digitlab.runs import STATUS_FILE, read_json


def a_run(folder, name, state, checkpoint=False):
    run = folder / name
    run.mkdir(parents=True)
    write_json(run / "config.json", {"model": "mlp"})
    write_json(run / STATUS_FILE, {"state": state})
    if checkpoint:
        write_json(run / "checkpoint.json", {"epoch": 2})
    return run


def test_a_first_attempt_trains_a_new_run_with_the_trials_arguments(tmp_path):
    trial = Trial("mlp", "fashion-mnist", 3, str(tmp_path / "t"), ("--no-plots", "--limit", "100"))
    command = train_command(trial, "/data")
    assert command[1:] == ["-m", "digitlab", "train", "--model", "mlp", "--dataset", "fashion-mnist", "--seed", "3",
                           "--out", str(tmp_path / "t"), "--no-plots", "--limit", "100", "--data-dir", "/data"]


def test_a_retry_resumes_the_unfinished_run_from_its_checkpoint(tmp_path):
    run = a_run(tmp_path / "t", "20261204-mlp", "training", checkpoint=True)
    command = train_command(Trial("mlp", "mnist", 0, str(tmp_path / "t")), None)
    assert command[-2:] == ["--resume", str(run)]


def test_a_retry_of_a_run_killed_before_its_first_checkpoint_starts_anew_and_marks_it_failed(tmp_path):
    run = a_run(tmp_path / "t", "20261204-mlp", "training")
    command = train_command(Trial("mlp", "mnist", 0, str(tmp_path / "t")), None)
    assert "--resume" not in command and "--model" in command
    assert read_json(run / STATUS_FILE)["state"] == "failed"


def test_a_trial_given_up_leaves_no_run_training_and_complete_ones_untouched(tmp_path):
    done = a_run(tmp_path / "t", "a", "complete")
    stuck = a_run(tmp_path / "t", "b", "training", checkpoint=True)
    mark_failed(Trial("mlp", "mnist", 0, str(tmp_path / "t")), "node lost 3 times")
    assert read_json(done / STATUS_FILE)["state"] == "complete"
    status = read_json(stuck / STATUS_FILE)
    assert status["state"] == "failed" and "node lost 3 times" in status["error"]
    assert runs_in(tmp_path / "nowhere") == []


def test_runs_from_before_the_sweep_are_not_the_trials(tmp_path):
    """An earlier reproduce's runs in the same folder: neither reported, resumed nor marked failed."""
    old_done = a_run(tmp_path / "t", "a", "complete")
    old_stuck = a_run(tmp_path / "t", "b", "training", checkpoint=True)
    trial = Trial("mlp", "mnist", 0, str(tmp_path / "t"), earlier=("a", "b"))
    assert trial.runs() == []
    assert "--resume" not in train_command(trial, None)
    mark_failed(trial, "gave up")
    assert read_json(old_stuck / STATUS_FILE)["state"] == "training"
    assert read_json(old_done / STATUS_FILE)["state"] == "complete"
    mine = a_run(tmp_path / "t", "c", "training", checkpoint=True)
    assert trial.runs() == [mine] and train_command(trial, None)[-2:] == ["--resume", str(mine)]
    assert Trial.of({**trial.__dict__, "extra": []}) == trial


def test_the_training_process_dies_when_its_trials_process_is_killed(tmp_path):
    """A parent starts a child as run_trial does, then is killed with SIGKILL (no finally runs):
    the child must not live on, though it runs in a session of its own."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from digitlab.cluster.sweep import launched\n"
        "child = subprocess.Popen(launched([sys.executable, '-c', 'import time; time.sleep(60)']), start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n")])
    deadline = time.monotonic() + 30
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert os.getpgid(child) == child  # a process group of its own, for killpg
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as f:
            if f.read().split()[2] == "Z":  # a zombie waiting for init to reap it: dead
                return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")


def finished_run(folder, accuracy):
    """A complete run folder as `digitlab train` leaves it, as far as reproduce reads it."""
    run = a_run(folder, "20261204-000000-softmax", "complete")
    write_json(run / "metrics.json", {"test_accuracy": accuracy, "train_seconds": 3.0})
    return str(run)


def test_reproduce_on_a_runner_measures_the_seeds_that_finished_and_names_the_rest(tmp_path):
    """What `reproduce --cluster` hands to the sweep and makes of its outcomes (no cluster needed)."""
    from digitlab.lab.reproduce import reproduce

    asked = []

    def runner(trainings):
        asked.extend(trainings)
        return [(finished_run(tmp_path / "runs" / "s0", 0.92), None), (None, "node lost 3 times"),
                (finished_run(tmp_path / "runs" / "s2", 0.93), None)]

    shown, failures = [], []
    rows = reproduce(["softmax"], 3, tmp_path / "out", on_result=shown.append, runner=runner, failures=failures)
    assert [(t["model"], t["dataset"], t["seed"]) for t in asked] == [("softmax", "mnist", s) for s in range(3)]
    assert [t["folder"] for t in asked] == [str(tmp_path / "out" / f"softmax-seed{s}") for s in range(3)]
    assert all(t["extra"] == ("--no-plots",) for t in asked)  # the numbers, not five figures a run (issue 24)
    assert [r.values for r in rows] == [[0.92, 0.93]] and shown == rows
    assert failures == ["softmax (seed 1): node lost 3 times"]


def test_reproduce_with_every_seed_failed_has_no_row_but_each_failure(tmp_path):
    from digitlab.lab.reproduce import reproduce

    failures = []
    rows = reproduce(["softmax", "mlp"], 1, tmp_path, runner=lambda ts: [(None, "no room")] * len(ts),
                     failures=failures)
    assert rows == [] and failures == ["softmax (seed 0): no room", "mlp (seed 0): no room"]


def test_one_seed_shows_no_spread_rather_than_a_spread_of_zero():
    """`reproduce --seeds 1` printed "92.38% ± 0.00%": with one seed the spread is unknown (the
    README walkthrough of 2026-12-07)."""
    from digitlab.lab.reproduce import Reproduction, markdown_table

    one = Reproduction("softmax", "sgd", "about 92%", "test_accuracy", 0.915, [0.9238], [3.0])
    two = Reproduction("mlp", "adam", "97.88%", "test_accuracy", 0.9768, [0.9770, 0.9780], [9.0, 9.0])
    assert one.summary == "92.38% (1 seed)" and two.summary == "97.75% ± 0.07%"
    table = markdown_table([one, two])
    assert "92.38% (1 seed) test, n=1" in table and "± 0.00%" not in table and "97.75% ± 0.07% test, n=2" in table
