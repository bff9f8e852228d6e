"""Sweeps on Ray Tune: each training of `compare` (one model on one data set, one seed) a trial.

A trial runs the unchanged `digitlab train` in a process of its own, as a local `compare` does, so
every preset keeps its backend and a trial's run equals a local run's. Trials write their run
folders under the sweep's folder, which every node must reach (a shared file system). When a
trial fails (its node lost, its process killed) Tune runs it again, up to `retries` times,
wherever there is room; the new attempt resumes the trial's run from its last checkpoint when it
has one. A trial that fails for good has its run marked "failed", never left "training".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from digitlab.errors import ClusterError
from digitlab.lab.reproduce import train_argv
from digitlab.runs import CONFIG_FILE, METRICS_FILE, STATUS_FILE, is_complete, read_json
from digitlab.files import write_json

CHECKPOINT = "checkpoint.json"  # digitlab.training.checkpoints.CHECKPOINT_JSON (not imported: Keras)


@dataclass(frozen=True)
class Trial:
    """One `digitlab train`: its preset, data set and seed, the folder its run goes to, and the
    other arguments it takes."""

    model: str
    dataset: str
    seed: int
    folder: str
    extra: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()  # runs in the folder before the sweep (an earlier reproduce's): not the trial's

    @classmethod
    def of(cls, fields: dict) -> Trial:
        """A Trial from its fields as a dict (Tune's config, `compare`'s trainings)."""
        return cls(fields["model"], fields["dataset"], fields["seed"], fields["folder"], tuple(fields["extra"]),
                   tuple(fields.get("earlier", ())))

    def runs(self) -> list[Path]:
        """The trial's run folders: those its attempts made."""
        return [run for run in runs_in(Path(self.folder)) if run.name not in self.earlier]


@dataclass(frozen=True)
class Outcome:
    """What became of a trial: its complete run folder, or why it failed for good."""

    trial: Trial
    run: str | None
    error: str | None
    node: str | None  # the Ray node that finished it
    resumed: bool = False  # finished by an attempt that resumed an earlier one's checkpoint


def runs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / CONFIG_FILE).is_file()) if folder.is_dir() else []


def train_command(trial: Trial, data_dir: str | None) -> list[str]:
    """The `digitlab train` this attempt runs: the trial's unfinished run resumed when it has a
    checkpoint; else a new run (an unfinished one without a checkpoint is marked failed first)."""
    folder = Path(trial.folder)
    for run in trial.runs():
        if not is_complete(run):
            if (run / CHECKPOINT).is_file():
                return train_argv("--resume", str(run), data_dir=data_dir)
            write_json(run / STATUS_FILE, {"state": "failed", "error": "stopped before its first checkpoint; "
                                                                       "the retry started a new run"})
    return train_argv("--model", trial.model, "--dataset", trial.dataset, "--seed", str(trial.seed),
                      "--out", str(folder), *trial.extra, data_dir=data_dir)


# The training's first step, before it becomes `digitlab train` (os.execv): ask Linux for SIGKILL
# when the parent (the trial's worker) dies, however it dies, then check the parent is still the
# one that started it (it may have died before the request). Done in the child rather than with
# Popen's preexec_fn, which is unsafe in a process with threads, as Ray's workers are.
LAUNCHER = ("import ctypes, os, signal, sys\n"
            "if sys.platform.startswith('linux'): ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
            "if os.getppid() != int(sys.argv[1]): sys.exit(70)\n"
            "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n")


def launched(command: list[str]) -> list[str]:
    """`command` (a Python command line) started through LAUNCHER: it dies with this process."""
    return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *command[1:]]


def run_trial(config: dict) -> None:
    """Tune's function trainable: one trial's training, start (or resume) to finish."""
    import ray
    from ray import tune

    trial = Trial.of(config["trial"])
    folder = Path(trial.folder)
    done = [r for r in trial.runs() if is_complete(r)]
    resumed = False
    if not done:
        folder.mkdir(parents=True, exist_ok=True)
        command = train_command(trial, config.get("data_dir"))
        resumed = "--resume" in command
        # its own process group (for killpg), and dead with this worker process however it ends
        child = subprocess.Popen(launched(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        try:
            _, stderr = child.communicate()
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
        if child.returncode != 0:
            tail = "\n".join(stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"digitlab train exited with {child.returncode}: {tail}")
        done = [r for r in trial.runs() if is_complete(r)]
    metrics = read_json(done[-1] / METRICS_FILE)
    tune.report({"test_accuracy": float(metrics["test_accuracy"]), "run": str(done[-1]),
                 "node": ray.get_runtime_context().get_node_id(), "resumed": resumed})


def sweep(trials: list[Trial], *, cpus_per_run: float = 1, retries: int = 2, data_dir: str | None = None,
          storage: Path) -> list[Outcome]:
    """Run the trials on the connected Ray cluster; one Outcome each, in the trials' order."""
    from ray import tune

    if len({t.folder for t in trials}) != len(trials):
        raise ClusterError("two trials of the sweep would write to the same folder.")
    known = [replace(t, earlier=tuple(run.name for run in runs_in(Path(t.folder)))) for t in trials]
    tuner = tune.Tuner(
        tune.with_resources(run_trial, {"cpu": cpus_per_run}),
        param_space={"trial": tune.grid_search([asdict(t) for t in known]),
                     "data_dir": str(data_dir) if data_dir else None},
        # a trial's worker process is kept for the next trial: Tune's own cost per trial here was
        # 2 s of a new worker process each (benchmarks/scaling.py)
        tune_config=tune.TuneConfig(reuse_actors=True),
        # its own experiment folder: two sweeps into one --out, even started in the same second
        run_config=tune.RunConfig(name=f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
                                  storage_path=str(storage.absolute()),
                                  verbose=0, failure_config=tune.FailureConfig(max_failures=retries)),
    )
    # Tune prints its experiment's table and paths to stdout even at verbose=0 (its new output's
    # experiment_started): the command's output is the leaderboard or the table, not Tune's.
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        results = tuner.fit()
    by_folder = {}
    for result in results:
        trial = Trial.of(result.config["trial"])
        if result.error is None and result.metrics.get("run"):
            by_folder[trial.folder] = Outcome(trial, result.metrics["run"], None, result.metrics.get("node"),
                                              bool(result.metrics.get("resumed")))
        else:
            error = str(result.error or "no result").strip().splitlines()
            by_folder[trial.folder] = Outcome(trial, None, error[-1][:300] if error else "failed", None)
    outcomes = []
    for trial, mine in zip(trials, known):
        outcome = by_folder.get(trial.folder) or Outcome(trial, None, "the trial never ran", None)
        if outcome.run is None:
            mark_failed(mine, outcome.error)
        outcomes.append(replace(outcome, trial=trial))
    return outcomes


def mark_failed(trial: Trial, error: str) -> None:
    """Every unfinished run of a trial that failed for good: "failed", with the reason."""
    for run in trial.runs():
        if not is_complete(run):
            write_json(run / STATUS_FILE, {"state": "failed", "error": f"the sweep gave up on it: {error}"})


def runner_for(out: str | os.PathLike, *, cpus_per_run: float, retries: int, data_dir=None):
    """A runner for `digitlab.lab.compare.compare`: its trainings as one sweep, each its run folder
    or its error."""

    def run(trainings: list[dict]) -> list[tuple[str | None, str | None]]:
        trials = [Trial.of(t) for t in trainings]
        outcomes = sweep(trials, cpus_per_run=cpus_per_run, retries=retries,
                         data_dir=str(data_dir) if data_dir else None, storage=Path(out) / ".tune")
        return [(o.run, o.error) for o in outcomes]

    return run
