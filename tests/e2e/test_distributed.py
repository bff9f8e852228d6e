"""`digitlab train --coordinator`: a dense preset trained by two processes that sum their gradients
over gloo (Keras' DataParallel on JAX), against one process fed the same global batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA_DIR, digitlab_command, require_real_data

pytestmark = pytest.mark.slow

ARGS = ["--model", "mlp", "--limit", "6000", "--epochs", "2", "--no-plots"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(out: Path, processes: int, process_id: int, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR)}
    return subprocess.Popen([*digitlab_command(), "train", *ARGS, "--out", str(out), "--coordinator",
                             f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(process_id)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen) -> str:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return stdout


def test_two_processes_train_the_weights_one_process_trains_on_the_same_batches(tmp_path):
    require_real_data("mnist")
    import digitlab

    port = free_port()
    pair = [start(tmp_path / f"two-{i}", 2, i, port) for i in (0, 1)]
    outputs = [finished(p) for p in pair]
    alone = finished(start(tmp_path / "one", 1, 0, free_port()))
    assert "Process 0 of 2" in outputs[0] and "Run folder:" in outputs[0]
    assert "Process 1 done: process 0 writes the run folder" in outputs[1]
    assert not (tmp_path / "two-1").exists() or not list((tmp_path / "two-1").iterdir())  # process 1 wrote nothing
    (run2,), (run1,) = list((tmp_path / "two-0").iterdir()), list((tmp_path / "one").iterdir())
    assert json.loads((run2 / "status.json").read_text())["state"] == "complete"
    two, one = (digitlab.load_model(r / "model.keras").get_weights() for r in (run2, run1))
    largest = max(float(np.abs(a - b).max()) for a, b in zip(two, one))
    print(f"largest weight difference, 2 processes against 1: {largest:.3g}")
    assert largest <= 1e-5
    m2, m1 = (json.loads((r / "metrics.json").read_text()) for r in (run2, run1))
    assert abs(m2["test_accuracy"] - m1["test_accuracy"]) <= 2e-4 and m2["test_accuracy"] > 0.9
    assert m2["processes"] == 2 and m1["processes"] == 1  # the run says how it was trained
    h2, h1 = (json.loads((r / "history.json").read_text()) for r in (run2, run1))
    assert len(h2["val_accuracy"]) == 2 and np.allclose(h2["loss"], h1["loss"], atol=1e-5)
    assert "Test accuracy" in alone


def test_a_diverging_job_fails_and_says_so(tmp_path):
    """A loss gone to NaN stops the job with the epoch named, and the run folder says failed (it
    is never marked complete with NaN weights)."""
    require_real_data("mnist")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR)}
    proc = subprocess.run([*digitlab_command(), "train", "--model", "mlp", "--limit", "2000", "--epochs", "2",
                           "--no-plots", "--learning-rate", "1e30", "--out", str(tmp_path), "--coordinator",
                           f"127.0.0.1:{free_port()}", "--num-processes", "1", "--process-id", "0"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "training diverged" in proc.stderr and "Traceback" not in proc.stderr
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    assert not (run / "metrics.json").exists()


def test_ctrl_c_while_waiting_for_the_other_processes_stops_at_once_and_says_so(tmp_path):
    """JAX waits for the other processes inside C++, where Python hears no signal: Ctrl-C did
    nothing for up to its 5 minutes, and the run folder kept no status. Now processes 0 and 1 (the
    other one never comes) stop with one line and exit code 130; process 0's folder says failed."""
    import signal
    import time

    require_real_data("mnist")
    for process_id in (0, 1):
        out, port = tmp_path / f"p{process_id}", free_port()
        with socket.socket() as stand_in:  # for process 1, the coordinator it knocks on: then it is waiting
            if process_id == 1:
                stand_in.bind(("127.0.0.1", port))
                stand_in.listen()
                stand_in.settimeout(180)
            proc = start(out, 2, process_id, port)
            if process_id == 1:
                stand_in.accept()[0].close()
            else:  # process 0 serves the job's coordination at the port while it waits
                deadline = time.monotonic() + 180
                while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                    time.sleep(0.2)
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)  # before: still waiting minutes later
        assert proc.returncode == 130, stderr[-2000:]
        assert stderr.strip().splitlines() == [
            "error: interrupted while waiting for the other 1 process(es); nothing was trained."], stderr[-2000:]
        assert f"Process {process_id} of 2" in stdout
        if process_id == 0:
            (run,) = out.iterdir()
            assert json.loads((run / "status.json").read_text())["state"] == "failed"
        else:
            assert not out.exists() or not list(out.iterdir())


def test_a_job_whose_other_processes_never_come_ends_with_one_line_before_jax_aborts(tmp_path):
    """JAX waits 300 s for the other processes, then ends process 0 from C++: SIGABRT, a native stack
    trace, and a run folder with no status. digitlab stops waiting first (JOIN_TIMEOUT_S, 270 s; 5 s
    here) with one line, and the folder says failed."""
    import sys

    require_real_data("mnist")
    out, port = tmp_path / "p0", free_port()
    code = ("import sys; from digitlab.training import distributed; distributed.JOIN_TIMEOUT_S = 5; "
            "from digitlab.cli.main import run; sys.argv[0] = 'digitlab'; run()")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR)}
    done = subprocess.run([sys.executable, "-c", code, "train", *ARGS, "--out", str(out), "--coordinator",
                           f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0"],
                          env=env, capture_output=True, text=True, timeout=200)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: process 0 waited 5 s at 127.0.0.1:{port} and the other 1 did not all come; start every process "
        "with the same --coordinator and --num-processes, within a few minutes of each other, process 0 on the "
        "coordinator's machine."], done.stderr[-2000:]
    (run,) = out.iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
