"""The helper processes that draw a run's figures (digitlab.reports.helper): the work runs there, its
errors come back as themselves, a helper that died is replaced by this process, and a stopped
helper leaves nothing behind."""

from __future__ import annotations

import os
import time

import pytest

from digitlab.files import atomic_write
from digitlab.reports import helper


def write_slowly(path: str) -> None:
    """Run in a helper: a write that is under way for a minute."""
    with atomic_write(path) as tmp:
        tmp.write_text("half")
        time.sleep(60)


@pytest.fixture()
def two():
    with helper.started(2, warm=()) as helpers:
        yield helpers


def test_calls_run_in_the_helpers_round_robin_and_in_order(two):
    assert len(two) == 2
    pids = helper.run_all(two, os.getpid, [(), (), ()])
    assert pids[0] == pids[2] == two[0].process.pid and pids[1] == two[1].process.pid != os.getpid()
    assert helper.run_all(two, divmod, [(7, 2), (9, 4)]) == [(3, 1), (2, 1)]


def test_an_error_in_a_helper_is_raised_here_as_itself_with_where_it_happened(two):
    with pytest.raises(FileNotFoundError) as raised:
        helper.run_all(two, os.stat, [("/no/such/file",)])
    assert isinstance(raised.value.__cause__, helper._RemoteTraceback) and "/no/such/file" in str(raised.value.__cause__)
    assert helper.run_all(two, os.getpid, [()]) == [two[0].process.pid]  # still serving


def test_a_helper_that_died_is_replaced_by_this_process(two):
    two[0].process.kill()
    two[0].process.wait()
    assert helper.run_all(two, os.getpid, [(), ()]) == [os.getpid(), two[1].process.pid]
    assert helper.run_all([], os.getpid, [()]) == [os.getpid()]  # none started: all here


def test_a_helper_does_not_import_from_the_working_folder(tmp_path, monkeypatch):
    """A `threading.py` or `json.py` where the user runs `digitlab train` is not imported by its
    helpers (the first would stop a helper at its start, the run then drawing alone)."""
    for name in ("threading", "json"):
        (tmp_path / f"{name}.py").write_text("raise SystemExit('the working folder was imported from')\n")
    monkeypatch.chdir(tmp_path)
    from tests.conftest import REPO

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # for _where_json_is, a function of this test module
    with helper.started(1, warm=("json",)) as helpers:
        assert helper.run_all(helpers, os.getcwd, [()]) == [str(tmp_path)]
        pid, json_file = helper.run_all(helpers, _where_json_is, [()])[0]
    assert pid == helpers[0].process.pid != os.getpid()
    assert not json_file.startswith(str(tmp_path))


def _where_json_is() -> tuple[int, str]:
    import json

    return os.getpid(), json.__file__


def test_helpers_stay_in_the_session_but_not_in_the_terminals_process_group(two):
    """Ctrl-C at a terminal goes to its foreground process group: the run's, not the helpers'
    (the run stops them). A session of their own would have Linux schedule them beside the run."""
    for h in two:
        assert os.getpgid(h.process.pid) == h.process.pid != os.getpgid(0)
        assert os.getsid(h.process.pid) == os.getsid(0)


class TwoArguments(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


def raise_two_arguments() -> None:
    raise TwoArguments(1, 2)


def test_an_error_that_does_not_unpickle_comes_back_as_what_it_said(monkeypatch):
    from tests.conftest import REPO

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # for this test module's functions
    with helper.started(1, warm=()) as helpers:
        with pytest.raises(RuntimeError, match="TwoArguments: 1 and 2"):
            helper.run_all(helpers, raise_two_arguments, [()])
        assert helper.run_all(helpers, os.getpid, [()]) == [helpers[0].process.pid]  # still in step


def test_helpers_end_with_the_block_at_once_when_it_raises(tmp_path, monkeypatch):
    from tests.conftest import REPO

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # for write_slowly, a function of this test module
    with helper.started(2, warm=()) as helpers:
        pass
    assert [h.process.returncode for h in helpers] == [0, 0]
    target = tmp_path / "figure.png"
    with pytest.raises(KeyboardInterrupt), helper.started(1, warm=()) as helpers:
        assert helper._send(helpers[0], write_slowly, (str(target),)) is helpers[0]
        deadline = time.time() + 60
        while not list(tmp_path.iterdir()) and time.time() < deadline:
            time.sleep(0.01)
        assert list(tmp_path.iterdir()), "the helper never started writing"
        raise KeyboardInterrupt  # Ctrl-C in the run while the helper writes
    assert helpers[0].process.returncode is not None
    assert list(tmp_path.iterdir()) == []  # its temporary file went with it, and no figure.png


def test_a_helper_that_cannot_start_means_drawing_here(monkeypatch):
    import subprocess

    def refuse(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    with helper.started(2) as helpers:
        assert helpers == []
        assert helper.run_all(helpers, os.getpid, [(), ()]) == [os.getpid()] * 2


def test_a_runs_figures_and_report_drawn_by_helpers_are_the_ones_drawn_here(tmp_path):
    """`draw_run` shares the drawing between two helper processes; what they write is byte for
    byte what this process writes alone, and the report embeds the same pictures."""
    import numpy as np

    from digitlab.evaluation.evaluate import Evaluation
    from digitlab.reports.run_figures import draw_run

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 10
    probabilities = np.eye(10)[labels] * 0.9 + 0.01
    probabilities[[3, 17]] = np.eye(10)[[8, 1]] * 0.9 + 0.01  # two mistakes
    evaluation = Evaluation("mnist", [str(i) for i in range(10)], labels, probabilities)
    history = {"accuracy": [0.5, 0.9], "loss": [1.0, 0.3], "val_accuracy": [0.6, 0.9], "val_loss": [0.9, 0.4]}
    folders = {}
    for name, count in (("here", 0), ("helpers", 2)):
        folders[name] = folder = tmp_path / name / "run"
        folder.mkdir(parents=True)
        with helper.started(count) as helpers:
            assert len(helpers) == count
            draw_run(folder, {"model": "mlp"}, history, evaluation, (images[:25], labels[:25]), images,
                     {"train_seconds": 1.0}, {"python": "3"}, helpers)
    here, there = ({p.name: p.read_bytes() for p in folders[k].iterdir()} for k in ("here", "helpers"))
    assert sorted(here) == ["confusion.png", "curves.png", "predictions.png", "probabilities.png", "report.html",
                            "samples.png"]
    assert here == there
    assert here["report.html"].count(b"data:image/png;base64,") == 3  # curves, confusion, the mistakes


def test_long_requests_and_replies_to_one_helper_do_not_wait_on_each_other():
    """Two calls for one helper, each with megabytes each way: written one at a time (both at
    once could fill both pipes, each process waiting for the other to read)."""
    import threading

    big = [(b"x" * 3_000_000,), (b"y" * 3_000_000,)]
    results = []
    with helper.started(1, warm=()) as helpers:
        worker = threading.Thread(target=lambda: results.extend(helper.run_all(helpers, bytes, big)), daemon=True)
        worker.start()
        worker.join(timeout=60)
        alive = worker.is_alive()
        if alive:
            helpers[0].process.kill()
    assert not alive, "the run and its helper waited on each other"
    assert results == [b"x" * 3_000_000, b"y" * 3_000_000]


def test_an_error_in_one_helper_still_reads_the_others_reply(two):
    with pytest.raises(FileNotFoundError):
        helper.run_all(two, os.stat, [("/no/such/file",), ("/",)])
    assert helper.run_all(two, os.getpid, [(), ()]) == [h.process.pid for h in two]  # each reply is its own
