"""Reproduce the tutorials: train every preset with its recipe over several seeds, compare claims.

Each (preset, seed) trains in its own `digitlab train` process, so every preset runs on the Keras
backend measured fastest for it (a process can use only one).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from digitlab.errors import ConfigError, DigitlabError
from digitlab.models import PRESETS, get_preset
from digitlab.models.precision import resolve_precision
from digitlab.runs import METRICS_FILE, latest_run, read_json


@dataclass
class Reproduction:
    """One preset's results against its tutorial's claim."""

    preset: str
    recipe: str
    claim: str
    metric: str
    threshold: float
    values: list[float]
    seconds: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def spread(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def summary(self) -> str:
        """"99.21% ± 0.05%", or "92.38% (1 seed)": one seed has no spread to show, not a spread of 0."""
        if len(self.values) < 2:
            return f"{self.mean:.2%} (1 seed)"
        return f"{self.mean:.2%} ± {self.spread:.2%}"

    @property
    def meets(self) -> bool:
        return self.mean >= self.threshold


def recipe_text(name: str) -> str:
    """The preset's recipe in one line, as it trains on this machine (its precision resolved)."""
    config = resolve_precision(get_preset(name).config())
    lr = f" lr {config.learning_rate:g}" if config.learning_rate else ""
    if config.lr_schedule != "constant":
        lr += f" ({config.lr_schedule} decay)"
    if config.validation == "test":
        val = "validated on test"
    else:
        val = f"val split {config.validation_split:g}"
    return f"{config.optimizer}{lr}, batch {config.batch_size}, {config.epochs} epochs, {val}{config.extras_note()}"


def reproduce(
    presets: list[str] | None = None,
    seeds: int = 1,
    out: str | os.PathLike = "runs/reproduce",
    data_dir: str | os.PathLike | None = None,
    on_result=None,
    *,
    runner: Callable[[list[dict]], Iterable[tuple[str | None, str | None]]] | None = None,
    failures: list[str] | None = None,
) -> list[Reproduction]:
    """Train each preset `seeds` times (seeds 0..n-1) and compare with what its tutorial reported.

    The trainings are dicts as `digitlab.lab.compare` makes them. By default they run here one
    after another and a failure stops the reproduction; a `runner` (`digitlab.cluster.sweep`) runs
    them all and returns for each its run folder or why it failed: a failure is added to `failures`
    and its preset is measured on the seeds that finished."""
    failures = [] if failures is None else failures
    names = presets or [name for name, p in PRESETS.items() if p.claim is not None]
    for name in names:
        if get_preset(name).claim is None:  # also rejects unknown names, before training anything
            raise ConfigError(f"{name} is not a tutorial's network: there is no claim to reproduce.")
    # Without figures, as compare's: a reproduction wants the numbers, and each run's five figures and
    # report cost a second or more (`digitlab plot KIND RUN` draws any of them later).
    trainings = [{"model": name, "dataset": "mnist", "seed": seed, "extra": ("--no-plots",),
                  "folder": str(Path(out) / f"{name}-seed{seed}")} for name in names for seed in range(seeds)]
    rows = {}
    for name in names:
        claim = get_preset(name).claim
        rows[name] = Reproduction(name, recipe_text(name), claim.text, claim.metric, claim.threshold, [], [])
    runner = runner or partial(train_here, data_dir=data_dir)
    for training, (run, error) in zip(trainings, runner(trainings)):
        row = rows[training["model"]]
        if run is None:
            failures.append(f"{row.preset} (seed {training['seed']}): {error}")
        else:
            metrics = read_json(Path(run) / METRICS_FILE)
            key = row.metric if row.metric in metrics else f"final_{row.metric}"
            row.values.append(float(metrics[key]))
            row.seconds.append(float(metrics["train_seconds"]))
        if training["seed"] == seeds - 1 and row.values and on_result is not None:
            on_result(row)
    return [row for row in rows.values() if row.values]


def train_here(trainings: list[dict], data_dir) -> Iterator[tuple[str, None]]:
    """Each training in turn, in a `digitlab train` process of its own; a failure raises."""
    for t in trainings:
        folder = Path(t["folder"])
        train_in_subprocess(t["model"], t["seed"], folder, data_dir, ("--dataset", t["dataset"], *t["extra"]))
        yield str(latest_run(folder)), None


def train_in_subprocess(name: str, seed: int, out: Path, data_dir, extra: tuple[str, ...] = ()) -> dict:
    """`digitlab train` in a child process (so each preset gets its own backend); its metrics."""
    command = train_argv("--model", name, "--seed", str(seed), "--out", str(out), *extra, data_dir=data_dir)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise DigitlabError(f"training {name} {' '.join(extra)} (seed {seed}) failed with exit code "
                            f"{done.returncode}:\n{tail}")
    return read_json(latest_run(out) / METRICS_FILE)


def train_argv(*args: str, data_dir=None) -> list[str]:
    """The command line of `digitlab train ARGS` in a child process of this Python (with
    `--data-dir` when one is given)."""
    return [sys.executable, "-m", "digitlab", "train", *args, *(["--data-dir", str(data_dir)] if data_dir is not None else [])]


def markdown_table(results: list[Reproduction]) -> str:
    """The results as a Markdown table, as docs/presets.md shows them."""
    lines = [
        "| preset | recipe | the tutorial reported | we got (mean ± sd, n) | meets the claim |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        where = "held-out" if r.metric == "val_accuracy" else "test"
        got = f"{r.summary} {where}, n={len(r.values)}"
        lines.append(f"| {r.preset} | {r.recipe} | {r.claim} | {got} | {'yes' if r.meets else 'no'} |")
    return "\n".join(lines)
