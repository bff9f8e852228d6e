"""Which Keras backend trains each preset fastest on this CPU? Prints medians and ratios.

    python benchmarks/backends.py                       # mlp and cnn, jax vs tensorflow, 3 rounds
    python benchmarks/backends.py --presets mlp --rounds 5 --backends jax,tensorflow,numpy
    python benchmarks/backends.py --quick               # a smoke run on 2,000 images (CI)

Each measurement is a fresh process (a process can hold one backend) that trains the preset with
its recipe's batch size and optimizer for `--epochs` epochs and reports the steady seconds per
epoch (the first epoch, which includes compilation, is reported apart). Rounds are interleaved
across backends so that machine noise hits them alike; medians are quoted. TensorFlow, the
tutorials' stack, is the reference (1x). `numpy` is digitlab's from-scratch engine (dense presets).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
import numpy as np
t0 = time.perf_counter()
import keras
from digitlab import load_dataset
from digitlab.models import build_model, config_for
from digitlab.preprocess import one_hot, shape_for
from digitlab.training import make_optimizer
name, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = config_for(name)
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
x, y = x[:limit], y[:limit]
keras.utils.set_random_seed(0)
model = build_model(name)
model.compile(optimizer=make_optimizer(config, -(-len(x) // config.batch_size)),
              loss="categorical_crossentropy", metrics=["accuracy"])
shape = tuple(model.input_shape[1:])
xs, ys = shape_for(x, shape), one_hot(y, 10)
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
model.fit(xs, ys, batch_size=config.batch_size, epochs=epochs, callbacks=[T()], verbose=0)
acc = model.evaluate(shape_for(xt, shape), one_hot(yt, 10), batch_size=1000, verbose=0)[1]
print(json.dumps({"backend": keras.backend.backend(), "epochs": times, "test_accuracy": acc,
                  "process_s": time.perf_counter() - t0}))
"""


CHILD_NUMPY = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from digitlab import load_dataset
from digitlab.models import build_model, config_for
from digitlab.preprocess import shape_for
from digitlab.scratch import make_optimizer
from digitlab.scratch.convert import from_keras
from digitlab.scratch.train import evaluate, train_epoch
name, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = config_for(name)
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
x, y = shape_for(x[:limit], (784,)), y[:limit].astype(np.int64)
net = from_keras(build_model(name), rng=np.random.default_rng(0))
opt = make_optimizer(config.optimizer, config.learning_rate)
rng = np.random.default_rng(0)
times = []
for e in range(epochs):
    t = time.perf_counter()
    train_epoch(net, opt, x, y, config.batch_size, rng)
    times.append(time.perf_counter() - t)
acc = evaluate(net, shape_for(xt, (784,)), yt.astype(np.int64))[1]
print(json.dumps({"backend": "numpy", "epochs": times, "test_accuracy": acc, "process_s": time.perf_counter() - t0}))
"""


def measure(backend: str, preset: str, epochs: int, limit: int) -> dict:
    child = CHILD_NUMPY if backend == "numpy" else CHILD
    env = {**os.environ, "KERAS_BACKEND": "jax" if backend == "numpy" else backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", child, preset, str(epochs), str(limit)],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{backend}/{preset} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="mlp,cnn")
    parser.add_argument("--backends", default="jax,tensorflow,numpy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per process (the first is warm-up)")
    parser.add_argument("--limit", type=int, default=60000, help="training images")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 epochs, 2,000 images")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.epochs, args.limit = 1, 2, 2000
    for preset in args.presets.split(","):
        # The NumPy engine has no convolutions: it runs the dense presets only.
        backends = [b for b in args.backends.split(",") if not (b == "numpy" and preset == "cnn")]
        results: dict[str, list[dict]] = {b: [] for b in backends}
        for _ in range(args.rounds):
            for backend in backends:  # interleaved: noise hits every backend alike
                results[backend].append(measure(backend, preset, args.epochs, args.limit))
        print(f"\n{preset}: {args.limit} training images, {args.epochs} epochs per process, {args.rounds} rounds")
        print(f"{'backend':<12}{'steady s/epoch (median, range)':<34}{'first epoch s':<16}{'test acc':<10}{'vs tensorflow':>14}")
        steady = {b: [statistics.median(r["epochs"][1:]) for r in rs] for b, rs in results.items()}
        reference = statistics.median(steady["tensorflow"]) if "tensorflow" in steady else None
        for backend, rs in results.items():
            med = statistics.median(steady[backend])
            span = f"{med:.2f} ({min(steady[backend]):.2f} - {max(steady[backend]):.2f})"
            first = statistics.median(r["epochs"][0] for r in rs)
            acc = statistics.median(r["test_accuracy"] for r in rs)
            ratio = f"{reference / med:.2f}x" if reference else "-"
            print(f"{backend:<12}{span:<34}{first:<16.2f}{acc:<10.4f}{ratio:>14}")


if __name__ == "__main__":
    main()
