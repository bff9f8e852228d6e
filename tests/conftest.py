"""Shared fixtures: where the real data is, and how to run the installed `digitlab` command."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory) -> Path:
    """A run folder of the default MLP trained with its recipe (5 epochs) and a fitted temperature."""
    require_real_data("mnist")
    out = tmp_path_factory.mktemp("mlp-runs")
    done = run_cli("train", "--out", str(out), "--no-plots")
    assert done.returncode == 0, done.stderr
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run
