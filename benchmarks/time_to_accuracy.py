"""Time from process start to a test accuracy: `digitlab train` against Keras + TensorFlow's plain fit.

    python benchmarks/time_to_accuracy.py                      # cnn-fast and cnn-simple, 99.0%, 1 round
    python benchmarks/time_to_accuracy.py --rounds 3 --target 0.99 --presets cnn-fast
    python benchmarks/time_to_accuracy.py --quick              # smoke run: mlp, 90%, 3,000 images (CI)

Both stacks train each preset with its recipe (optimizer, learning-rate schedule, batch size,
epochs) and validate on the 10,000 test images after every epoch (`--validation test`), printing
a line per epoch. Each stack's best recipe is the one with the lowest median. Two ratios: against
the reference's best recipe (a recipe of digitlab's that gets there sooner counts for the reference
too: the stacks compared on the same arithmetic), and against the reference running the tutorials'
own recipe, `cnn-simple` (keras-io's Simple MNIST convnet), when it is raced: the reference stack
as the speed issue defines it, Keras + TensorFlow with plain fit and the tutorials' recipe.
This script starts each run as a fresh process, reads its output as it comes, and stops the clock
at the first epoch whose test accuracy reaches the target: the wall time includes start-up,
imports, data loading and compilation, as a user waits for them. Rounds are interleaved; medians
are quoted, with the epoch at which the target was reached.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The reference: the tutorials' stack, Keras + TensorFlow with plain fit, the preset's recipe.
REFERENCE = r"""
import os, sys
import numpy as np
import keras
from digitlab import load_dataset
from digitlab.models import build_model, config_for
from digitlab.data.arrays import one_hot, shape_for
from digitlab.training.fit import make_optimizer
name, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = config_for(name, epochs=epochs)
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
x, y = x[:limit], y[:limit]
keras.utils.set_random_seed(0)
model = build_model(name)
model.compile(optimizer=make_optimizer(config, -(-len(x) // config.batch_size)),
              loss="categorical_crossentropy", metrics=["accuracy"])
shape = tuple(model.input_shape[1:])
model.fit(shape_for(x, shape), one_hot(y, 10), batch_size=config.batch_size, epochs=config.epochs,
          validation_data=(shape_for(xt, shape), one_hot(yt, 10)), verbose=2)
"""

# The tutorials' CNN recipe (keras-io's Simple MNIST convnet): the reference stack's own recipe.
TUTORIAL = "cnn-simple"
VAL = re.compile(r"val_accuracy: (\d\.\d+)")


def race(command: list[str], env: dict, target: float) -> dict:
    """Run `command`; the seconds from its start to the first epoch line with val_accuracy >= target.

    A run that fails (exits non-zero before reaching the target) carries its last error line."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        epoch, reached, last = 0, None, None
        for line in proc.stdout:
            match = VAL.search(line)
            if match:
                epoch += 1
                last = float(match.group(1))
                if last >= target:
                    reached = time.perf_counter() - started
                    proc.kill()
                    break
        proc.wait()
        error = None
        if reached is None and proc.returncode:
            err.seek(0)
            lines = [line.strip() for line in err if line.strip()]
            error = lines[-1] if lines else f"exit status {proc.returncode}"
    return {"seconds": reached, "epoch": epoch, "accuracy": last, "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="cnn-fast,cnn-simple", help="comma-separated recipes to race")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--epochs", type=int, default=None, help="every recipe's epochs (default: each preset's)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--limit", type=int, default=60000, help="training images")
    parser.add_argument("--quick", action="store_true", help="smoke run: mlp to 90%% on 3,000 images")
    parser.add_argument("--warm", action="store_true",
                        help="let digitlab use its compilation cache (default: each run compiles from scratch)")
    args = parser.parse_args()
    if args.quick:
        args.presets, args.target, args.limit, args.epochs = "mlp", 0.90, 3000, 3
    from digitlab.errors import ConfigError
    from digitlab.models import config_for

    presets = args.presets.split(",")
    for preset in presets:
        try:
            config_for(preset)  # an unknown name fails now, not after the other recipes' runs
        except ConfigError as e:
            parser.error(str(e))
    digitlab = shutil.which("digitlab", path=os.path.dirname(sys.executable)) or "digitlab"
    base_env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for preset in presets:
                epochs = str(args.epochs or config_for(preset).epochs)
                # A cold start compiles: a compilation cache of its own for every run, unless --warm
                # (JAX's cache; a preset digitlab trains on TensorFlow compiles afresh in any case).
                cold = {} if args.warm else {"JAX_COMPILATION_CACHE_DIR": tempfile.mkdtemp(dir=out)}
                results.setdefault(("digitlab", preset), []).append(race(
                    [digitlab, "train", "--model", preset, "--epochs", epochs, "--validation", "test",
                     "--limit", str(args.limit), "--no-plots", "--out", out], {**base_env, **cold}, args.target))
                results.setdefault(("tensorflow", preset), []).append(race(
                    [sys.executable, "-c", REFERENCE, preset, epochs, str(args.limit)],
                    {**base_env, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}, args.target))
    medians = {}
    for key, rs in results.items():
        times = [r["seconds"] for r in rs if r["seconds"] is not None]
        medians[key] = statistics.median(times) if len(times) == len(rs) else None
    best = {}
    for stack in ("digitlab", "tensorflow"):
        reached = [(medians[(stack, p)], p) for p in presets if medians[(stack, p)] is not None]
        best[stack] = min(reached) if reached else (None, None)
    reference = best["tensorflow"][0]
    tutorial = medians.get(("tensorflow", TUTORIAL))
    raced_tutorial = TUTORIAL in presets
    width = 20 if raced_tutorial else 0  # the column against the tutorial recipe, when it was raced
    print(f"\nseconds from process start to {args.target:.1%} test accuracy ({args.limit} training images, "
          f"{args.rounds} round(s), {'warm' if args.warm else 'cold'} compilation cache; ratio against Keras + TensorFlow's best recipe"
          f"{' (' + best['tensorflow'][1] + ')' if reference else ''}"
          f"{' and against Keras + TensorFlow with the tutorial recipe (' + TUTORIAL + ')' if raced_tutorial else ''})")
    print(f"{'stack':<12}{'recipe':<12}{'seconds (median, range)':<28}{'epoch reached':<16}{'vs tf best':>11}"
          f"{'vs tf ' + TUTORIAL if raced_tutorial else '':>{width}}")
    for (stack, preset), rs in results.items():
        med = medians[(stack, preset)]
        mark = " *" if best[stack][1] == preset else ""
        failed = [r["error"] for r in rs if r["error"]]
        if failed:
            print(f"{stack:<12}{preset:<12}failed: {failed[0]}")
            continue
        if med is None:
            top = max((r["accuracy"] or 0) for r in rs)
            print(f"{stack:<12}{preset:<12}{'not reached (best ' + format(top, '.2%') + ')':<28}{'-':<16}{'-':>11}{'-' if raced_tutorial else '':>{width}}")
            continue
        times = [r["seconds"] for r in rs]
        span = f"{med:.1f} ({min(times):.1f} - {max(times):.1f})"
        ratio = f"{reference / med:.2f}x" if reference else "-"
        against_tutorial = (f"{tutorial / med:.2f}x" if tutorial else "-") if raced_tutorial else ""
        print(f"{stack:<12}{preset:<12}{span:<28}{statistics.median(r['epoch'] for r in rs):<16}{ratio:>11}"
              f"{against_tutorial:>{width}}{mark}")
    print("* each stack's best recipe")
    if any(r["error"] for rs in results.values() for r in rs):
        sys.exit("some runs failed (their errors above)")


if __name__ == "__main__":
    main()
