"""The `digitlab` command's quick exit (issue 24): after JAX or TensorFlow it skips Python's
teardown (0.7 s) but keeps everything an exit promises: the exit code, the output, the exit
handlers. main() itself, which the tests call in-process, never ends the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys
{imports}
atexit.register(lambda path=sys.argv[1]: open(path, "w").write("handlers ran"))
class Teardown:  # says so when Python's own teardown collects it: only the usual exit
    def __del__(self):
        sys.stdout.write(" torn down")
        sys.stdout.flush()
TEARDOWN = Teardown()
from digitlab.cli.main import run
sys.argv = ["digitlab", *sys.argv[2:]]
print("before", flush=False)  # buffered: must still come out
run()
print("never")
"""


@pytest.mark.parametrize("imports", ["import jax", ""])
@pytest.mark.parametrize(("args", "code", "says", "loads_keras"), [
    (["evaluate", "no-such-run"], 1, "no such run folder", False),  # digitlab's own error: one line, exit 1
    (["train", "--model", "nonsense"], 2, "is not a preset", False),  # a usage error: Click's exit 2
    (["models"], 0, "mlp-dropout", True),  # counts each preset's parameters with Keras
    (["--version"], 0, "digitlab 0.", False),  # there was none (the README walkthrough of 2026-12-07)
])
def test_the_command_exits_with_mains_code_output_and_handlers(tmp_path, imports, args, code, says, loads_keras):
    marker = tmp_path / "atexit.txt"
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(imports=imports), str(marker), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert says in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert done.stdout.startswith("before") and "never" not in done.stdout
    assert marker.read_text() == "handlers ran"
    assert ("torn down" in done.stdout) == (not imports and not loads_keras)  # JAX loaded: the quick exit
