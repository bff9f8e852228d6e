"""Checkpoints: after every epoch, everything needed to continue the run exactly where it stopped.

A checkpoint is two files in the run folder: the state (model weights and optimiser state, in a
.keras file for the Keras engine or an .npz for the NumPy engine) and `checkpoint.json`, which
names it, with the epoch, the history so far and the random-number state. Each file is written
under a temporary name and renamed; `checkpoint.json` is written last, so it only ever names a
complete state file. A run killed at any moment resumes from its last complete epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.errors import RunError
from digitlab.runs import read_json, write_json

CHECKPOINT_JSON = "checkpoint.json"


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
    tmp = run_dir / f".tmp-{name}"
    write_state(tmp)
    os.replace(tmp, run_dir / name)
    previous = read_json(run_dir / CHECKPOINT_JSON)["state"] if (run_dir / CHECKPOINT_JSON).is_file() else None
    write_json(run_dir / CHECKPOINT_JSON, {"epoch": epoch, "state": name, "history": history, **(extra or {})})
    if previous and previous != name:
        (run_dir / previous).unlink(missing_ok=True)


def load(run_dir: Path) -> Checkpoint:
    path = Path(run_dir) / CHECKPOINT_JSON
    if not path.is_file():
        raise RunError(f"{run_dir}: no checkpoint to resume from (it stopped before its first epoch ended); "
                       "start the run again.")
    data = read_json(path)
    state = Path(run_dir) / data["state"]
    if not state.is_file():
        raise RunError(f"{state}: the checkpoint's state file is missing.")
    extra = {k: v for k, v in data.items() if k not in ("epoch", "state", "history")}
    return Checkpoint(int(data["epoch"]), data["history"], state, extra)


def remove(run_dir: Path) -> None:
    """Drop the checkpoint once the run is complete: the final model replaces it."""
    if (run_dir / CHECKPOINT_JSON).is_file():
        state = read_json(run_dir / CHECKPOINT_JSON)["state"]
        (run_dir / CHECKPOINT_JSON).unlink()
        (run_dir / state).unlink(missing_ok=True)


def save_numpy_state(path: Path, net, optimizer) -> None:
    """Parameters and optimiser moments of a NumPy-engine network, as an .npz file."""
    arrays = {f"param{i}": p for i, p in enumerate(net.parameters())}
    for name in ("_m", "_v", "_velocity", "_momentum"):
        for i, a in enumerate(getattr(optimizer, name, [])):
            arrays[f"opt{name}{i}"] = a
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_numpy_state(path: Path, net, optimizer) -> None:
    with np.load(path) as data:
        for i, p in enumerate(net.parameters()):
            p[...] = data[f"param{i}"]
        for name in ("_m", "_v", "_velocity", "_momentum"):
            keys = sorted((k for k in data.files if k.startswith(f"opt{name}") and k[len(f"opt{name}"):].isdigit()),
                          key=lambda k: int(k[len(f"opt{name}"):]))
            if keys:
                setattr(optimizer, name, [data[k].copy() for k in keys])
