"""Run folders: where a training run's files live, and how to find them again.

A run folder is self-describing:
  config.json        the exact RunConfig used (written before the first epoch)
  status.json        "training" until everything is written, then "complete", with the backend
  model.keras        the trained Keras model
  history.json/.csv  per-epoch loss, accuracy, val_loss, val_accuracy
  metrics.json       test loss and accuracy, per-class report, most confused pairs
  confusion.csv      the test confusion matrix (row = true class, column = predicted)
  calibration.json   the softmax temperature fitted on the validation split
  *.png              samples, curves, confusion, predictions, probabilities
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from digitlab.config import RunConfig
from digitlab.errors import RunError
from digitlab.files import atomic_write, write_json  # noqa: F401 (write_json: run files are written with it)

MODEL_FILE = "model.keras"
CLASSIC_MODEL_FILE = "model.skops"  # a scikit-learn baseline (digitlab.models.classic)
MODEL_FILES = (MODEL_FILE, CLASSIC_MODEL_FILE)
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion.csv"
CALIBRATION_FILE = "calibration.json"
CLASSES_FILE = "classes.json"  # the class names the model's outputs stand for, in order


@contextlib.contextmanager
def training_lock(run_dir: Path) -> Iterator[None]:
    """Held while a process trains `run_dir`: a second `train --resume` of it, or a resume of a run
    that is still training, is refused instead of writing the same checkpoints at once.

    An flock on the run's own config.json (written once, before): the kernel releases it when the
    process ends, even by SIGKILL, and no lock file is left in the folder, as filelock's would be.
    """
    try:
        import fcntl
    except ImportError:  # Windows has no flock: runs are not locked there
        yield
        return
    try:  # for writing where it can be: NFS emulates flock with locks that need it
        fd = os.open(run_dir / CONFIG_FILE, os.O_RDWR)
    except OSError:
        try:
            fd = os.open(run_dir / CONFIG_FILE, os.O_RDONLY)
        except OSError as e:
            raise RunError(f"{run_dir / CONFIG_FILE}: cannot open ({e.strerror or e}).") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"{run_dir}: another digitlab process is training this run now. Wait for it to end, "
                           "or stop it (Ctrl-C keeps its epochs) and resume then.") from None
        except OSError:  # a file system without locks: train unlocked, as before there was a lock
            pass
        yield
    finally:
        os.close(fd)


def dataset_label(dataset: str) -> str:
    """A data set's name fit for a folder name: a path to your own data becomes its last part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).stem or "data")


def new_run_dir(out: str | os.PathLike, model: str, dataset: str) -> Path:
    """Create and return a fresh folder out/<date-time>-<model>-<dataset>[-k]."""
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{model}-{dataset_label(dataset)}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for k in range(1, 1000):
            path = out / (base if k == 1 else f"{base}-{k}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise RunError(f"cannot create a run folder in {out} ({e.strerror or e}); choose another with --out.") from None
    raise RunError(f"{out}: too many runs named {base}.")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RunError(f"{path}: cannot read ({e}).") from None


def is_complete(run_dir: Path) -> bool:
    status = Path(run_dir) / STATUS_FILE
    if not status.is_file():
        return False
    data = read_json(status)
    if not isinstance(data, dict):
        raise RunError(f"{status}: not a run's status (a JSON object with its \"state\"); the run folder "
                       f"{run_dir} is damaged: delete it, or move it out of {Path(run_dir).parent}.")
    return data.get("state") == "complete"


def complete_runs(out: str | os.PathLike = "runs") -> list[Path]:
    """The complete run folders under `out`, oldest first (by when they completed)."""
    return sorted((p for p in Path(out).glob("*/") if _model_in(p) is not None and is_complete(p)),
                  key=lambda p: (p / STATUS_FILE).stat().st_mtime)


def latest_run(out: str | os.PathLike = "runs") -> Path:
    """The most recent complete run folder under `out`."""
    runs = complete_runs(out)
    if not runs:
        raise RunError(f'no complete run in {out}/; train one with "digitlab train" or name a run folder.')
    return runs[-1]


def _model_in(run_dir: Path) -> Path | None:
    return next((run_dir / f for f in MODEL_FILES if (run_dir / f).is_file()), None)


def resolve_model(path: str | os.PathLike | None, out: str | os.PathLike = "runs") -> tuple[Path, Path | None]:
    """Map a run folder, a model file (.keras, .skops) or None (latest run) to (model file, run folder or None)."""
    if path is None:
        run = latest_run(out)
        return _model_in(run), run
    path = Path(path)
    if path.is_dir():
        model = _model_in(path)
        if model is None:
            raise RunError(f"{path}: not a run folder (no {MODEL_FILE}); is the run still training or did it fail?")
        return model, path
    if path.is_file():
        if path.suffix not in (".keras", ".skops"):
            raise RunError(f"{path}: not a model file; expected a run folder, a .keras or a .skops file.")
        run = path.parent if (path.parent / CONFIG_FILE).is_file() else None
        return path, run
    raise RunError(f"{path}: no such run folder or model file.")


@dataclass(frozen=True)
class RunFiles:
    """A model to use, the run folder it was trained in (None for a bare model file) and that
    run's configuration: what evaluation, recognition, diagnosis, figures and the server open."""

    model: Path
    folder: Path | None
    config: RunConfig | None
    shipped: bool = False  # a model shipped with digitlab (digitlab.models.shipped): `model` is its inference.npz
    default: bool = False  # chosen by the default rule (`open_model`), no model having been named
    passed_over: Path | None = None  # by that rule: a newer complete run, whose classes are not digits

    @property
    def dataset(self) -> str:
        """The data set the model was trained on ("mnist" for a bare model file)."""
        return self.config.dataset if self.config else "mnist"

    @property
    def preset(self) -> str | None:
        return self.config.model if self.config else None

    def read(self, name: str) -> dict | None:
        """One of the run folder's JSON files (HISTORY_JSON, METRICS_FILE...), None if there is none."""
        if self.folder is None or not (self.folder / name).is_file():
            return None
        data = read_json(self.folder / name)
        if name == HISTORY_JSON and not _is_history(data):
            raise RunError(f"{self.folder / name}: not a training history (metric names, each with one number an "
                           "epoch, all as long); digitlab did not write it so. Delete it to go without the curves.")
        if name == METRICS_FILE and not _is_metrics(data):
            raise RunError(f"{self.folder / name}: not the run's metrics (an object whose test_accuracy is a number "
                           "from 0 to 1); digitlab did not write it so. Delete it (the test accuracy is then not shown), or train the run again.")
        return data

    @property
    def temperature(self) -> float | None:
        return run_temperature(self.folder)

    @property
    def class_names(self) -> list[str] | None:
        """The names of the model's outputs as the run recorded them when it started (None for a bare
        model file or a run from before runs recorded them): never read again from the data, which
        may have changed since."""
        data = self.read(CLASSES_FILE)
        if data is None:
            return None
        names = data.get("classes") if isinstance(data, dict) else None
        if not (isinstance(names, list) and 0 < len(names) <= 10_000 and all(isinstance(n, str) for n in names)):
            raise RunError(f'{self.folder / CLASSES_FILE}: "classes" must be a list of class names; digitlab did '
                           "not write it so.")
        return names


def open_run(path: str | os.PathLike | None = None, out: str | os.PathLike = "runs") -> RunFiles:
    """A run folder, a model file (.keras, .skops) or None (the latest complete run in `out`),
    with the run's configuration read once from its config.json."""
    model, folder = resolve_model(path, out)
    config = RunConfig.load(folder / CONFIG_FILE) if folder is not None else None
    return RunFiles(model, folder, config)


def run_temperature(run_dir: Path | None) -> float | None:
    """The temperature fitted when the run trained, if it was."""
    if run_dir is None or not (run_dir / CALIBRATION_FILE).is_file():
        return None
    data = read_json(run_dir / CALIBRATION_FILE)
    temperature = data.get("temperature") if isinstance(data, dict) else None
    # Fitted temperatures lie well inside this range; a negative one would turn the answers upside down.
    if type(temperature) not in (int, float) or not 0.01 <= temperature <= 100:
        raise RunError(f'{run_dir / CALIBRATION_FILE}: "temperature" is {temperature!r}, not a number from 0.01 to '
                       "100; digitlab did not write it so. Delete the file to use uncalibrated probabilities.")
    return float(temperature)


def _is_history(data) -> bool:
    """Whether `data` is what write_history writes: names, each with as many numbers (or nulls) as epochs."""
    if not isinstance(data, dict):
        return False
    values = list(data.values())
    return all(isinstance(v, list) and len(v) == len(values[0]) and
               all(x is None or (type(x) in (int, float)) for x in v) for v in values)


def _is_metrics(data) -> bool:
    accuracy = data.get("test_accuracy", 0) if isinstance(data, dict) else None
    return type(accuracy) in (int, float) and 0 <= accuracy <= 1


def write_history(run_dir: Path, history: dict) -> None:
    """history.json and history.csv (one row per epoch) in the run folder."""
    if not _is_history(history):  # a resumed checkpoint's history with metrics this training does not record
        raise RunError(f"{run_dir}: the history resumed from {run_dir / 'checkpoint.json'} has metrics this run does "
                       f"not record ({', '.join(f'{k}: {len(v)}' for k, v in history.items())} epochs); digitlab did "
                       "not write it so: start the run again.")
    write_json(run_dir / HISTORY_JSON, history)
    keys = list(history)
    with atomic_write(run_dir / HISTORY_CSV) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *keys])
        for i in range(len(history[keys[0]]) if keys else 0):
            writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
