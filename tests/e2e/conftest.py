"""The running server the end-to-end API and page tests share: `digitlab serve` of the default MLP
run, one per test module, on a free port of 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, digitlab_command

sys.path.insert(0, str(REPO / "benchmarks"))
from service_load import free_port, wait_until_up  # noqa: E402


@pytest.fixture(scope="module")
def server_process(mlp_run):
    port = free_port()
    # --timeout 60: on CI the server shares 2 cores with another test worker's training, and a request
    # that waits over the default 10 s gets a 503 "busy" (the load test once saw one in 1,000). The
    # time limit itself is tested in tests/unit/test_api.py; here a request must simply be answered.
    process = subprocess.Popen([*digitlab_command(), "serve", "--model", str(mlp_run), "--port", str(port),
                                "--timeout", "60"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process)
    yield url, process
    assert process.poll() is None, "the server went down during the tests"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(server_process):
    return server_process[0]
