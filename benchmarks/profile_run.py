"""Where the seconds of one whole `digitlab train` go, from process start to exit.

    python benchmarks/profile_run.py                      # the default run (mlp, 5 epochs, figures)
    python benchmarks/profile_run.py --rounds 3 -- --no-plots
    python benchmarks/profile_run.py -- --model cnn-fast   # anything after -- goes to `digitlab train`

Each round runs two fresh processes. The first is `digitlab train` itself: this script stamps
each line it prints with the time since it was started, as a user on a terminal sees them, and
measures its exit. The second is the same entry point with a timer around each step of the
pipeline, looked up where the pipeline calls it: the CLI's import, the pipeline's (Keras, JAX),
the data, the training (model, compilation, epochs), its checkpoints, the NumPy export,
calibration, the test evaluation, the run files, the figures and report (drawn by the helper
processes started with the run: the time the run waits for them), then "complete".
Medians over the rounds are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from whole_run import first_epoch_line  # benchmarks/, the folder this script runs from: one rule for both

CHILD = r"""
import atexit, functools, json, os, sys, time
T0 = time.perf_counter()
spans = []  # (step, start, end) in seconds since the interpreter reached this line

def timed(module, name, step):
    inner = getattr(module, name)
    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        start = time.perf_counter() - T0
        try:
            return inner(*args, **kwargs)
        finally:
            spans.append((step, start, time.perf_counter() - T0))
    setattr(module, name, wrapper)

from digitlab.cli.main import main
spans.append(("import the CLI", 0.0, time.perf_counter() - T0))
t = time.perf_counter() - T0
from digitlab.lab import pipeline
from digitlab.training import checkpoints
spans.append(("import the pipeline (Keras, JAX...)", t, time.perf_counter() - T0))
for name, step in [("load_dataset", "data"), ("make_splits", "data"), ("fit", "training (model, compile, epochs)"),
                   ("export_inference", "NumPy export"), ("fit_temperature", "calibration"),
                   ("evaluate_model", "test evaluation"), ("write_history", "run files"),
                   ("draw_run", "figures and report (helper processes drawing)")]:
    timed(pipeline, name, step)
from digitlab.reports import helper  # the figures are drawn in helper processes, started with the run
timed(helper, "start", "start the helper process")
timed(checkpoints, "save", "checkpoints (in training)")
timed(pipeline, "train", "TOTAL train()")
timed(checkpoints, "remove", "run files")
atexit.register(lambda: print("PROFILE " + json.dumps(spans), file=sys.stderr, flush=True))
sys.argv = ["digitlab", "train", *sys.argv[1:]]
main()
"""


def one_run(train_args: list[str], instrumented: bool) -> dict:
    """One fresh process: `digitlab train` itself (instrumented=False: when its lines appear, when it
    exits), or with the timers (which import the pipeline before the CLI runs, so not for the lines)."""
    command = ([sys.executable, "-c", CHILD] if instrumented
               else [shutil.which("digitlab", path=os.path.dirname(sys.executable)) or "digitlab", "train"])
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        # Unbuffered, as on a terminal: each line is stamped when the user would see it.
        child = subprocess.Popen([*command, "--out", out, *train_args],
                                 stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        lines = [(time.perf_counter() - started, line.rstrip()) for line in child.stdout]
        child.wait()
        exited = time.perf_counter() - started
        err.seek(0)
        text = err.read()
        if child.returncode != 0:
            raise SystemExit(f"digitlab train failed ({child.returncode}):\n{text[-2000:]}")
    result = {"exit_s": exited, "first_line_s": lines[0][0] if lines else None, "first_epoch_line_s": first_epoch_line(lines),
              "lines": lines}
    if not instrumented:
        return result
    spans = json.loads(next(line for line in text.splitlines() if line.startswith("PROFILE "))[len("PROFILE "):])
    steps: dict[str, float] = {}
    for step, start, end in spans:
        steps[step] = steps.get(step, 0.0) + end - start
    steps["training (model, compile, epochs)"] -= steps.get("checkpoints (in training)", 0.0)
    total = steps.pop("TOTAL train()")
    steps["the rest of train() (folder, status, ...)"] = total - sum(
        v for k, v in steps.items() if not k.startswith("import"))
    return {**result, "steps": steps, "last_step_end_s": max(end for _, _, end in spans)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--show-lines", action="store_true", help="print the last round's output, time-stamped")
    args, train_args = parser.parse_known_args()
    train_args = [a for a in train_args if a != "--"]
    plain, runs = [], []
    for _ in range(args.rounds):  # interleaved
        plain.append(one_run(train_args, instrumented=False))
        runs.append(one_run(train_args, instrumented=True))

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    print(f"digitlab train {' '.join(train_args)}: {args.rounds} round(s), medians in seconds")
    print(f"  {'process start to exit':<40}{med(r['exit_s'] for r in plain):8.2f}")
    print(f"  {'first line printed':<40}{med(r['first_line_s'] for r in plain):8.2f}")
    print(f"  {'first epoch line printed':<40}{med(r['first_epoch_line_s'] for r in plain):8.2f}")
    print(f"  {'with the timers, start to exit':<40}{med(r['exit_s'] for r in runs):8.2f}")
    for step in runs[0]["steps"]:
        print(f"    {step:<38}{med(r['steps'].get(step) for r in runs):8.2f}")
    covered = med(sum(r["steps"].values()) for r in runs)
    print(f"    {'(the steps above, together)':<38}{covered:8.2f}")
    print(f"  {'after the last step, until exit':<40}{med(r['exit_s'] - r['last_step_end_s'] for r in runs):8.2f}"
          "  (interpreter start and exit, CLI output)")
    if args.show_lines:
        for t, line in plain[-1]["lines"]:
            print(f"  {t:7.2f}  {line}")
    return None


if __name__ == "__main__":
    sys.exit(main())
