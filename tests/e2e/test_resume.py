"""Interrupted training resumes to the same result: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA_DIR, digitlab_command, require_real_data, run_cli

pytestmark = pytest.mark.slow  # trainings, killed and resumed

# Half the training set: an epoch of this network takes about half a second, time enough to be
# interrupted inside epoch 2, and the three variants' six trainings take a third less of CI's time.
ARGS = ["--model", "mlp-dropout", "--epochs", "3", "--seed", "7", "--no-plots", "--limit", "30000"]


SIGINT_AT_DEFAULT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"


def start(out: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR)}
    # Ctrl-C at a terminal reaches a program whose SIGINT is at its default. Under a shell that
    # ignores SIGINT for background jobs (`pytest &` in a script), the child would inherit the
    # ignoring, Python would install no KeyboardInterrupt handler, and the run would just finish.
    # So the command starts through a small Python that puts SIGINT back to its default and execs
    # it (same process; a preexec_fn would fork this multithreaded JAX process).
    return subprocess.Popen([sys.executable, "-c", SIGINT_AT_DEFAULT, *digitlab_command(), "train", *ARGS, *extra,
                             "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_during_epoch_2(proc: subprocess.Popen, out: Path, sig: int) -> Path:
    """Wait for the first epoch's checkpoint, let epoch 2 start, then send `sig`."""
    deadline = time.time() + 600
    while time.time() < deadline:
        runs = [p for p in out.iterdir() if (p / "checkpoint.json").is_file()]
        if runs and json.loads((runs[0] / "checkpoint.json").read_text())["epoch"] == 1:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    time.sleep(0.1)  # into epoch 2 (an epoch of this network takes about half a second)
    run = runs[0]
    assert json.loads((run / "checkpoint.json").read_text())["epoch"] == 1, "epoch 2 ended before the signal"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return run


def weights(run: Path) -> list[np.ndarray]:
    import digitlab

    return digitlab.load_model(run / "model.keras").get_weights()


# The Keras and NumPy engines, and Keras on distorted images (new copies each epoch: a resumed
# run must draw the same ones).
VARIANTS = {"keras": ["--engine", "keras"], "numpy": ["--engine", "numpy"],
            "augmented": ["--engine", "keras", "--augment", "elastic"]}


@pytest.fixture(scope="module", params=list(VARIANTS))
def uninterrupted(request, tmp_path_factory):
    require_real_data("mnist")
    out = tmp_path_factory.mktemp(f"straight-{request.param}")
    done = run_cli("train", *ARGS, *VARIANTS[request.param], "--out", str(out))
    assert done.returncode == 0, done.stderr
    (run,) = list(out.iterdir())
    return request.param, run


def test_sigkill_in_epoch_2_then_resume_gives_the_same_model(uninterrupted, tmp_path):
    engine, straight = uninterrupted
    proc = start(tmp_path, *VARIANTS[engine])
    run = stop_during_epoch_2(proc, tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((run / "status.json").read_text())["state"] == "training"  # never claims complete
    done = run_cli("train", "--resume", str(run))
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "complete"
    largest = max(float(np.abs(a - b).max()) for a, b in zip(weights(straight), weights(run)))
    ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, straight))
    print(f"{engine}: largest weight difference {largest:.3g}; test accuracy resumed "
          f"{ours['test_accuracy']:.4f}, uninterrupted {theirs['test_accuracy']:.4f}")  # for docs/reliability.md
    assert largest <= 1e-6
    assert ours["test_accuracy"] == theirs["test_accuracy"] and ours["resumed"]
    assert json.loads((run / "history.json").read_text())["val_accuracy"] == \
        json.loads((straight / "history.json").read_text())["val_accuracy"]
    assert not (run / "checkpoint.json").exists()


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path):
    require_real_data("mnist")
    proc = start(tmp_path)
    run = stop_during_epoch_2(proc, tmp_path, signal.SIGINT)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "interrupted after 1 complete epoch(s) of 3" in " ".join(stderr.split()) and "--resume" in stderr
    assert "Traceback" not in stderr
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    done = run_cli("train", "--resume", str(run))
    assert done.returncode == 0, done.stderr
    done = run_cli("train", "--resume", str(run))
    assert done.returncode == 1 and "already complete" in done.stderr


def helpers_of(mark: str) -> list[int]:
    """Processes whose environment holds `mark`: what a command started, still running."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours
                pass
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_run_stopped_while_helpers_wait_to_draw_leaves_no_process_behind(tmp_path, sig):
    """A run with figures starts two helper processes (`digitlab.reports.helper`). Ctrl-C at a
    terminal (SIGINT to the whole foreground process group) stops the run with its one line and
    exit 130, not a helper's traceback; killed outright, its helpers see it gone and exit."""
    require_real_data("mnist")
    mark = f"DIGITLAB_TEST_MARK={os.getpid()}-{sig}-{time.time_ns()}"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR),
                                                                         mark.split("=")[0]: mark.split("=")[1]}
    args = [a for a in ARGS if a != "--no-plots"]
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_AT_DEFAULT, *digitlab_command(), "train", *args,
                             "--out", str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # a terminal's foreground group of its own
    deadline = time.time() + 600
    while not (runs := [p for p in tmp_path.iterdir() if (p / "checkpoint.json").is_file()]):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.02)
    assert json.loads((runs[0] / "checkpoint.json").read_text())["epoch"] == 1, "epoch 2 ended before the signal"
    assert len(helpers_of(mark)) == 3  # the run and its two helpers
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.kill()
    proc.wait(timeout=120)
    stderr = proc.stderr.read()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "Traceback" not in stderr and "interrupted" in stderr, stderr
        assert json.loads((runs[0] / "status.json").read_text())["state"] == "interrupted"
        assert helpers_of(mark) == []
    else:
        while helpers_of(mark) and time.time() < deadline:
            time.sleep(0.1)
        assert helpers_of(mark) == []
    assert not list(runs[0].glob("*.png"))
