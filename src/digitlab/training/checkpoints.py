"""Checkpoints: after every epoch, everything needed to continue the run exactly where it stopped.

A checkpoint is two files in the run folder: the state (model weights and optimiser state, in a
.keras file for the Keras engine or an .npz for the NumPy engine) and `checkpoint.json`, which
names it, with the epoch, the history so far and the random-number state. Each file is written
under a temporary name and renamed; `checkpoint.json` is written last, so it only ever names a
complete state file. A run killed at any moment resumes from its last complete epoch.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.errors import RunError
from digitlab.files import atomic_write
from digitlab.models.numpy_model import check_unpacked
from digitlab.runs import read_json, write_json

CHECKPOINT_JSON = "checkpoint.json"
STATE_NAME = re.compile(r"checkpoint-epoch([1-9][0-9]{0,6})\.(keras|npz)")  # the only state files save() writes


@dataclass
class Checkpoint:
    epoch: int  # epochs completed
    history: dict
    state_file: Path
    extra: dict  # engine-specific: random-number state, optimiser step count


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling and dropout: a run resumed at any epoch draws the same."""
    return (seed * 1_000_003 + epoch) % 2**32


def save(run_dir: Path, epoch: int, history: dict, write_state, suffix: str, extra: dict | None = None) -> None:
    """Write the state with `write_state(path)`, then commit it by writing checkpoint.json."""
    name = f"checkpoint-epoch{epoch}{suffix}"
    with atomic_write(run_dir / name) as tmp:
        write_state(tmp)
    previous = _previous_state(run_dir)
    write_json(run_dir / CHECKPOINT_JSON, {"epoch": epoch, "state": name, "history": history, **(extra or {})})
    if previous and previous != name:
        (run_dir / previous).unlink(missing_ok=True)


def load(run_dir: Path, epochs: int | None = None) -> Checkpoint:
    """The run's last checkpoint, every field checked (a run folder may come from anyone): its state
    file is named as digitlab names it, inside the run folder, for an epoch in 1..`epochs`."""
    path = Path(run_dir) / CHECKPOINT_JSON
    if not path.is_file():
        raise RunError(f"{run_dir}: no checkpoint to resume from (it stopped before its first epoch ended); "
                       "start the run again.")
    data = read_json(path)
    problem = _problem(data, epochs)
    if problem:
        raise RunError(f"{path}: {problem}. digitlab did not write it so; delete the run folder's "
                       f"{CHECKPOINT_JSON} and start the run again.")
    state = Path(run_dir) / data["state"]
    if not state.is_file():
        raise RunError(f"{state}: the checkpoint's state file is missing.")
    extra = {k: v for k, v in data.items() if k not in ("epoch", "state", "history")}
    return Checkpoint(int(data["epoch"]), data["history"], state, extra)


def remove(run_dir: Path) -> None:
    """Drop the checkpoint once the run is complete: the final model replaces it."""
    if (run_dir / CHECKPOINT_JSON).is_file():
        state = _previous_state(run_dir)
        (run_dir / CHECKPOINT_JSON).unlink()
        if state is not None:
            (run_dir / state).unlink(missing_ok=True)


def _previous_state(run_dir: Path) -> str | None:
    """The state file checkpoint.json names, if it is one digitlab could have written (else None:
    nothing outside the run's own checkpoint files is ever deleted)."""
    try:
        state = read_json(run_dir / CHECKPOINT_JSON).get("state")
    except (RunError, AttributeError):
        return None
    return state if isinstance(state, str) and STATE_NAME.fullmatch(state) else None


def _problem(data, epochs: int | None) -> str | None:
    """What is wrong with checkpoint.json's contents, or None."""
    if not isinstance(data, dict):
        return "it is not a JSON object"
    state, epoch, history = data.get("state"), data.get("epoch"), data.get("history")
    match = STATE_NAME.fullmatch(state) if isinstance(state, str) else None
    if match is None:
        return f'"state" is {state!r}, not a checkpoint file in the run folder (checkpoint-epochN.keras or .npz)'
    if type(epoch) is not int or epoch < 1:
        return f'"epoch" is {epoch!r}, not a whole number of epochs of at least 1'
    if int(match.group(1)) != epoch:
        return f'"state" {state} is not the state of epoch {epoch}'
    if epochs is not None and epoch > epochs:
        return f'"epoch" {epoch} is more than the run\'s {epochs} epochs'
    if not isinstance(history, dict) or not all(
            isinstance(values, list) and len(values) == epoch
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            for values in history.values()):
        return f'"history" does not hold {epoch} numbers per metric'
    iterations = data.get("iterations", 0)
    if type(iterations) is not int or iterations < 0:
        return f'"iterations" is {iterations!r}, not a whole number of steps'
    return None


def save_numpy_state(path: Path, net, optimizer) -> None:
    """Parameters and optimiser moments of a NumPy-engine network, as an .npz file."""
    arrays = {f"param{i}": p for i, p in enumerate(net.parameters())}
    for name in ("_m", "_v", "_velocity", "_momentum"):
        for i, a in enumerate(getattr(optimizer, name, [])):
            arrays[f"opt{name}{i}"] = a
    np.savez(path, **arrays)


def load_numpy_state(path: Path, net, optimizer) -> None:
    """Put a NumPy-engine checkpoint's parameters and optimiser state into `net` and `optimizer`,
    every array checked against the network's (a run folder may come from anyone)."""
    params = list(net.parameters())
    most = 4 * sum(p.nbytes for p in params) + 1_000_000  # parameters and three optimiser copies, with headers
    try:
        with np.load(path, allow_pickle=False) as data:
            check_unpacked(data, most, f"this network's {most:,}")
            for i, p in enumerate(params):
                value = data[f"param{i}"]
                if value.shape != p.shape or not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
                    raise ValueError(f"param{i} is not {p.shape} finite numbers")
                p[...] = value
            # What a step of this optimiser keeps: a checkpoint without it resumed with fresh moments,
            # a result other than the run's without a word
            kept = {"Adam": ("_m", "_v"), "RMSprop": ("_velocity", "_momentum")}.get(
                type(optimizer).__name__, ("_velocity",) if getattr(optimizer, "momentum", 0) else ())
            for name in ("_m", "_v", "_velocity", "_momentum"):
                keys = sorted((k for k in data.files if k.startswith(f"opt{name}") and k[len(f"opt{name}"):].isdigit()),
                              key=lambda k: int(k[len(f"opt{name}"):]))
                if not keys and name in kept:
                    raise ValueError(f"it holds no optimiser {name[1:]} arrays, which {type(optimizer).__name__} keeps")
                if keys:
                    state = [data[k].copy() for k in keys]
                    if [a.shape for a in state] != [p.shape for p in params]:
                        raise ValueError(f"the optimiser's {name[1:]} arrays do not fit the network")
                    # as the parameters: an int array failed the update with a traceback, and a NaN
                    # (or, for Adam's second moment, a negative) state was blamed on the learning rate
                    if not all(np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() for a in state) or (
                            name == "_v" and any((a < 0).any() for a in state)):
                        raise ValueError(f"the optimiser's {name[1:]} arrays are not all finite floating-point numbers"
                                         + (" of at least 0" if name == "_v" else ""))
                    state = [a.astype(p.dtype) for a, p in zip(state, params)]
                    setattr(optimizer, name, state)
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise RunError(f"{path}: cannot load the checkpoint ({type(e).__name__}: {e}); digitlab did not write it "
                       "so: start the run again.") from None
