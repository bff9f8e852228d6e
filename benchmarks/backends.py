"""Which Keras backend trains each preset fastest on this CPU? Prints medians and ratios.

    python benchmarks/backends.py                       # mlp and cnn: digitlab vs Keras + TF and others, 3 rounds
    python benchmarks/backends.py --presets mlp --rounds 5 --backends digitlab,tensorflow,floor
    python benchmarks/backends.py --quick               # a smoke run: the MLP on 2,000 images (CI)

Each measurement is a fresh process (a process can hold one backend) that trains the preset with
its recipe's batch size and optimizer for `--epochs` epochs and reports the steady seconds per
epoch (the first epoch, which includes compilation, is reported apart). Rounds are interleaved
across backends so that machine noise hits them alike; medians are quoted. TensorFlow, the
tutorials' stack, is the reference (1x). The engines:

- `digitlab`: what `digitlab train` runs on this machine: the preset's backend (for the CNNs, TensorFlow
  where it runs oneDNN's kernels, else JAX) and precision (for the CNNs, mixed bfloat16 where
  TensorFlow computes it fast, else float32), on JAX through digitlab's compiled loop (digitlab.training.jaxloop),
  else Keras' fit as digitlab runs it (several steps per call; one `fit` for all epochs, where `digitlab
  train` makes one per epoch with its own shuffling and validation);
- `digitlab-jax`: the same on JAX, whatever this CPU (for the CNNs: the compiled loop where TensorFlow would be chosen);
- `tensorflow`, `jax`: Keras' plain `model.fit` on that backend (`tensorflow` is the reference);
- `numpy`: digitlab's from-scratch engine (dense presets);
- `floor`: no training, only the matrix products of one epoch of the dense preset at its batch
  size, timed with NumPy (OpenBLAS) and in a jitted JAX loop, the faster counted: the arithmetic
  floor that no engine computing in float32 can beat on this machine.

Peak resident memory is each process's own (`ru_maxrss`).
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
from digitlab.data.arrays import one_hot, shape_for
from digitlab.training.fit import make_optimizer
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
import resource
print(json.dumps({"backend": keras.backend.backend(), "epochs": times, "test_accuracy": acc,
                  "process_s": time.perf_counter() - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


CHILD_DIGITLAB = r"""
import json, sys, time, resource
import numpy as np
t0 = time.perf_counter()
from digitlab.models import get_preset
from digitlab.models.backend import select_backend
name, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
select_backend(get_preset(name).backend)  # what `digitlab train` runs on this machine
import keras
from digitlab import load_dataset
from digitlab.training import jaxloop
from digitlab.models import build_model, config_for
from digitlab.data.arrays import one_hot, shape_for
from digitlab.models.precision import resolve_precision, training_mode
from digitlab.training.fit import compile_for_fit
config = resolve_precision(config_for(name))
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
keras.utils.set_random_seed(0)
model = build_model(name)
compile_for_fit(model, config, limit)
shape = tuple(model.input_shape[1:])
x, y = x[:limit].reshape(-1, *shape), y[:limit]
times = []
if jaxloop.supports(model):  # digitlab's compiled loop
    loop = jaxloop.build_loop(model, x, y, 10)
    for e in range(epochs):
        t = time.perf_counter()
        jaxloop.train_epoch(loop, model, np.random.default_rng(e).permutation(len(x)), config.batch_size, epoch=e + 1)
        times.append(time.perf_counter() - t)
    acc = jaxloop.evaluate(loop, model, xt.reshape(-1, *shape), yt)[1]
else:  # Keras' fit as digitlab.training.fit runs it (precision, steps per call), in one call for all epochs
    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
        def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
    with training_mode(model, config.precision):
        model.fit(shape_for(x, shape), one_hot(y, 10), batch_size=config.batch_size, epochs=epochs, callbacks=[T()], verbose=0)
    acc = model.evaluate(shape_for(xt, shape), one_hot(yt, 10), batch_size=1000, verbose=0)[1]  # as saved: float32
print(json.dumps({"backend": "digitlab", "keras_backend": keras.backend.backend(), "precision": config.precision, "epochs": times,
                  "test_accuracy": acc, "process_s": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


CHILD_FLOOR = r"""
import json, sys, time, resource
import numpy as np
from digitlab.models.backend import select_backend
select_backend("jax")
import jax, jax.numpy as jnp
from digitlab.models import build_model, config_for
name, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = config_for(name)
b = config.batch_size
kernels = [v.shape for v in build_model(name).trainable_variables if len(v.shape) == 2]
rng = np.random.default_rng(0)
# Per batch: each layer's forward product and its kernel gradient; the input gradient of every
# layer but the first (the images need none).
mats = []
for i, (n_in, n_out) in enumerate(kernels):
    mats.append((rng.random((b, n_in), np.float32), rng.random((n_in, n_out), np.float32)))  # forward
    mats.append((rng.random((n_in, b), np.float32), rng.random((b, n_out), np.float32)))     # kernel gradient
    if i:
        mats.append((rng.random((b, n_out), np.float32), rng.random((n_out, n_in), np.float32)))  # input gradient
flop = sum(2 * a.shape[0] * a.shape[1] * c.shape[1] for a, c in mats)
steps = -(-limit // b)
def numpy_epoch():
    for _ in range(steps):
        for a, c in mats:
            a @ c
jm = [(jnp.asarray(a), jnp.asarray(c)) for a, c in mats]
@jax.jit
def jax_epoch(jm):
    def body(carry, _):
        return carry + sum(jnp.sum((a + carry) @ c) for a, c in jm) * 1e-30, None
    return jax.lax.scan(body, jnp.float32(0), None, length=steps)[0]
jax_epoch(jm).block_until_ready()
times = []
for e in range(epochs):
    t = time.perf_counter(); numpy_epoch(); tn = time.perf_counter() - t
    t = time.perf_counter(); jax_epoch(jm).block_until_ready(); tj = time.perf_counter() - t
    times.append(min(tn, tj))
print(json.dumps({"backend": "floor", "epochs": times, "test_accuracy": float("nan"), "process_s": 0,
                  "gflop_per_epoch": flop * steps / 1e9, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


CHILD_NUMPY = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from digitlab import load_dataset
from digitlab.models import build_model, config_for
from digitlab.data.arrays import shape_for
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
import resource
print(json.dumps({"backend": "numpy", "epochs": times, "test_accuracy": acc, "process_s": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(backend: str, preset: str, epochs: int, limit: int) -> dict:
    child = {"numpy": CHILD_NUMPY, "digitlab": CHILD_DIGITLAB, "digitlab-jax": CHILD_DIGITLAB,
             "floor": CHILD_FLOOR}.get(backend, CHILD)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    if backend != "digitlab":  # digitlab chooses its own; digitlab-jax is its compiled loop, on JAX
        env["KERAS_BACKEND"] = backend if backend in ("jax", "tensorflow", "torch") else "jax"
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
    parser.add_argument("--backends", default="digitlab,tensorflow,jax,numpy,floor")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per process (the first is warm-up)")
    parser.add_argument("--limit", type=int, default=60000, help="training images")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 epochs, 2,000 images")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.epochs, args.limit = 1, 2, 2000
        args.backends = "digitlab,tensorflow,numpy,floor"  # Keras' own fit on JAX is the slow one: left out
        # The CNN runs the same code paths as the MLP here (and digitlab's CNN is tested by itself).
        args.presets = "mlp"
    for preset in args.presets.split(","):
        # The NumPy engine and the floor have no convolutions: dense presets only.
        dense = not preset.startswith("cnn")
        backends = [b for b in args.backends.split(",") if dense or b not in ("numpy", "floor")]
        results: dict[str, list[dict]] = {b: [] for b in backends}
        for _ in range(args.rounds):
            for backend in backends:  # interleaved: noise hits every backend alike
                results[backend].append(measure(backend, preset, args.epochs, args.limit))
        print(f"\n{preset}: {args.limit} training images, {args.epochs} epochs per process, {args.rounds} rounds")
        print(f"{'engine':<14}{'steady s/epoch (median, range)':<34}{'first epoch s':<16}{'test acc':<10}"
              f"{'peak MB':<10}{'vs tensorflow':>14}{'vs floor':>10}")
        steady = {b: [statistics.median(r["epochs"][1:]) for r in rs] for b, rs in results.items()}
        reference = statistics.median(steady["tensorflow"]) if "tensorflow" in steady else None
        floor = statistics.median(steady["floor"]) if "floor" in steady else None
        for backend, rs in results.items():
            med = statistics.median(steady[backend])
            span = f"{med:.2f} ({min(steady[backend]):.2f} - {max(steady[backend]):.2f})"
            first = statistics.median(r["epochs"][0] for r in rs)
            acc = statistics.median(r["test_accuracy"] for r in rs)
            peak = statistics.median(r["peak_mb"] for r in rs)
            ratio = f"{reference / med:.2f}x" if reference else "-"
            to_floor = f"{med / floor:.2f}x" if floor and backend != "floor" else "-"
            print(f"{backend:<14}{span:<34}{first:<16.2f}{acc:<10.4f}{peak:<10.0f}{ratio:>14}{to_floor:>10}")
        for backend in ("digitlab", "digitlab-jax"):
            if backend in results:
                r = results[backend][0]
                print(f"{backend} trained on {r['keras_backend']} in {r['precision']}")
        if floor:
            gflop = results["floor"][0]["gflop_per_epoch"]
            print(f"floor: {gflop:.1f} GFLOP of matrix products per epoch, {gflop / floor:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
