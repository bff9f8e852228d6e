"""Shared fixtures: where the real data is, and how to run the `digitlab` command (installed, or in process)."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from digitlab.data.load import DATA_ENV

REPO = Path(__file__).resolve().parents[1]
# CI sets DIGITLAB_DATA to ../shared/data; a developer checkout finds it beside the repo too.
DATA_DIR = Path(os.environ.get(DATA_ENV) or REPO.parent / "shared" / "data")

# XLA's compiled programs are shared by every test of a session's process (and its `digitlab`
# processes; with pytest-xdist each worker is such a process and has its own):
# a program is keyed by its own content, so sharing changes no result, and compiling each recipe
# once instead of in every test saves minutes. Everything else in the cache is per test
# (`isolated_cache`). Set before any test module imports Keras, which enables the cache.
SESSION_DIR = Path(tempfile.mkdtemp(prefix="digitlab-tests-"))
atexit.register(shutil.rmtree, SESSION_DIR, True)
COMPILED = SESSION_DIR / "compiled"
COMPILED.mkdir()


def cache_folder(folder: Path) -> Path:
    """`folder` made a digitlab cache whose compiled programs are the session's."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compiled").symlink_to(COMPILED, target_is_directory=True)
    return folder


os.environ["DIGITLAB_CACHE"] = str(cache_folder(SESSION_DIR / "cache"))


def require_real_data(name: str = "mnist") -> Path:
    """The folder of real data set `name`; fails (never skips) the test when it is missing."""
    folder = DATA_DIR / name
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(
            f"real {name} data not found in {folder}. Set {DATA_ENV} to the folder that holds "
            f"{name}/train-images-idx3-ubyte.gz (CI uses ../shared/data)."
        )
    return DATA_DIR


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return require_real_data("mnist")


@pytest.fixture(scope="session")
def mnist(data_dir):
    from digitlab import load_dataset

    return load_dataset("mnist", data_dir=data_dir)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty cache (but the session's compiled programs) and no mirror override:
    nothing a test could see leaks between tests."""
    monkeypatch.setenv("DIGITLAB_CACHE", str(cache_folder(tmp_path_factory.mktemp("cache"))))
    monkeypatch.delenv("DIGITLAB_MIRROR", raising=False)


def digitlab_command() -> list[str]:
    exe = shutil.which("digitlab", path=str(Path(sys.executable).parent)) or shutil.which("digitlab")
    assert exe, "the digitlab entry point is not installed; run pip install -e '.[dev]'"
    return [exe]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 900):
    """Run the installed `digitlab` command; returns the CompletedProcess (text output)."""
    # The backend is digitlab's choice unless a test names one.
    inherited = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    full_env = {**inherited, DATA_ENV: str(DATA_DIR), **(env or {})}
    return subprocess.run(
        [*digitlab_command(), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def invoke_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`digitlab ARGS` in this process: what run_cli gives (exit code, stdout, stderr), without the
    seconds a cold process spends importing. It runs the entry point's own main(), the function the
    installed command calls, inside Typer's CliRunner isolation (argv, stdin, stdout, stderr and the
    environment swapped, then put back): Click's usage errors exit 2 through the app, digitlab's own
    errors become main()'s one line and exit 1. Any other exception is a bug and fails the test here,
    with its traceback. (test_cli runs the installed command too, once, for its wiring.)"""
    from digitlab.cli.main import main

    code, shown, argv = 0, warnings.showwarning, sys.argv
    with CliRunner().isolation(env={DATA_ENV: str(DATA_DIR), **(env or {})}) as (stdout, stderr, _):
        sys.argv = ["digitlab", *args]
        try:
            main()
        except SystemExit as e:
            if isinstance(e.code, str):  # sys.exit("message"): Python prints it and exits 1
                sys.stderr.write(e.code + "\n")
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        finally:
            sys.argv, warnings.showwarning = argv, shown  # main() routes warnings to its console
            sys.stdout.flush()
            sys.stderr.flush()
        # Rich picks its colours when a console is made: a console made while pytest -s had a
        # terminal would colour this output, never a pipe's; the words are what is checked.
        out, err = (ANSI_CODE.sub("", s.getvalue().decode()) for s in (stdout, stderr))
    return subprocess.CompletedProcess(["digitlab", *args], code, out, err)


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory, worker_id) -> Path:
    """A run folder of the default MLP trained with its recipe (5 epochs) and a fitted temperature.

    Trained once a session: pytest-xdist's workers share it (the first to ask trains it, under a
    lock, in the session's folder above theirs); the tests only read it."""
    from filelock import FileLock

    from digitlab.runs import complete_runs

    require_real_data("mnist")
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    with FileLock(str(shared / "mlp-run.lock")):
        out = shared / "mlp-runs"
        if not complete_runs(out):
            done = run_cli("train", "--out", str(out), "--no-plots")
            assert done.returncode == 0, done.stderr
        (run,) = complete_runs(out)
    return run


def seven(size: int = 120) -> Image.Image:
    """A dark "7" on white paper."""
    a = np.full((size, size), 255, np.uint8)
    a[size // 5: size // 5 + size // 12, size // 4: 3 * size // 4] = 0
    for i in range(size // 5, 4 * size // 5):
        x = 3 * size // 4 - (i - size // 5) // 2
        a[i, x - size // 24: x + size // 24] = 0
    return Image.fromarray(a)


def said(done) -> str:
    """What a command printed on standard error, as one line (Rich boxes and wraps usage errors)."""
    return " ".join(done.stderr.replace("│", " ").split())
