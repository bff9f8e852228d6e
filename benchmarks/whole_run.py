"""A whole training run, process start to exit: `digitlab train` against the tutorials' script.

    python benchmarks/whole_run.py                    # the default MLP recipe, 5 epochs, 3 rounds
    python benchmarks/whole_run.py --rounds 5 --preset cnn-fast
    python benchmarks/whole_run.py --quick            # smoke run: 2,000 images, 1 epoch (CI)

What a user waits for: imports, data, compilation, training, the test-set evaluation and the
saved model. The engines, each a fresh process, interleaved round by round:

- `digitlab`: `digitlab train --model <preset>`, the complete run folder (model, history,
  checkpoints, metrics; and, unless `--no-plots`, its five figures and HTML report);
- `digitlab --no-plots`: the same run without figures and report;
- `digitlab first run`: `digitlab` as a user's very first run: an empty compilation cache (a
  fresh `$DIGITLAB_CACHE`; the data from `$DIGITLAB_DATA`, or from the cache in use);
- `jax script`: the default MLP's recipe as a plain JAX script (one jitted step, a Python loop
  over the batches, Adam written out), validation accuracy each epoch, the test accuracy, the
  weights saved: the floor a JAX user could write in an afternoon (`--preset mlp` only);
- `tensorflow`: the tutorials' script on their stack, Keras + TensorFlow with plain `fit`: the
  same network and recipe (optimizer, batch size, epochs, 10% held out for validation), then
  `evaluate` on the test set and `model.save`.

Wall seconds and peak resident memory (`ru_maxrss` of the child, from `os.wait4`) are printed
with medians, ranges and ratios against the tutorials' script; test accuracy from each run's output;
then issue 24's targets, each with its measured value: 3x the tutorials' script, no slower than the
JAX script, a first run within 1.5x of later ones, the first epoch line within 2.5 s of the start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

from inference import run_child  # benchmarks/, the folder this script runs from

# The tutorials' script on their stack; the network and recipe come from digitlab's preset so that
# both sides train the same thing, the data from the same IDX files.
REFERENCE = r"""
import json, sys
import numpy as np
import keras
from digitlab import load_dataset
from digitlab.models import build_model, config_for
from digitlab.data.arrays import one_hot, shape_for
from digitlab.training.fit import make_optimizer
name, epochs, limit, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
config = config_for(name, epochs=epochs)
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
x, y = x[:limit], y[:limit]
keras.utils.set_random_seed(0)
model = build_model(name)
steps = -(-int(len(x) * (1 - config.validation_split)) // config.batch_size)
model.compile(optimizer=make_optimizer(config, steps), loss="categorical_crossentropy", metrics=["accuracy"])
shape = tuple(model.input_shape[1:])
model.fit(shape_for(x, shape), one_hot(y, 10), batch_size=config.batch_size, epochs=config.epochs,
          validation_split=config.validation_split, verbose=2)
loss, accuracy = model.evaluate(shape_for(xt, shape), one_hot(yt, 10), batch_size=1000, verbose=0)
model.save(out + "/model.keras")
print(json.dumps({"test_accuracy": accuracy}))
"""

# The same recipe as a plain JAX script, as a user of JAX would write it (jit one training step,
# loop over the batches in Python; Adam written out: optax is not a dependency): the default MLP
# only, 784-512-10, Glorot-uniform kernels, Adam lr 0.001, batch 64, the last 10% held out.
JAX_SCRIPT = r"""
import json, sys
import numpy as np
import jax, jax.numpy as jnp
from digitlab import load_dataset
epochs, limit, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
x = x[:limit].reshape(-1, 784).astype(np.float32) / 255; y = y[:limit]
xt = xt.reshape(-1, 784).astype(np.float32) / 255
cut = int(len(x) * 0.9); (x, y), (xv, yv) = (x[:cut], y[:cut]), (x[cut:], y[cut:])
rng = np.random.default_rng(0)
def glorot(n_in, n_out):
    limit = np.sqrt(6 / (n_in + n_out))
    return jnp.asarray(rng.uniform(-limit, limit, (n_in, n_out)), jnp.float32)
params = [glorot(784, 512), jnp.zeros(512), glorot(512, 10), jnp.zeros(10)]
def forward(p, x):
    return jax.nn.relu(x @ p[0] + p[1]) @ p[2] + p[3]
def loss_fn(p, x, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(forward(p, x)), y[:, None], 1))
@jax.jit
def step(p, m, v, t, x, y):
    loss, g = jax.value_and_grad(loss_fn)(p, x, y)
    m = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
    v = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
    lr = 0.001 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    p = [a - lr * b / (jnp.sqrt(c) + 1e-7) for a, b, c in zip(p, m, v)]
    return p, m, v, loss
@jax.jit
def accuracy(p, x, y):
    return jnp.mean(jnp.argmax(forward(p, x), 1) == y)
m = [jnp.zeros_like(a) for a in params]; v = [jnp.zeros_like(a) for a in params]; t = 0
for epoch in range(epochs):
    order = rng.permutation(len(x))
    for i in range(0, len(x), 64):
        b = order[i:i + 64]; t += 1
        params, m, v, loss = step(params, m, v, t, x[b], y[b])
    print(f"epoch {epoch + 1}: loss {float(loss):.4f}, val_accuracy {float(accuracy(params, xv, yv)):.4f}", flush=True)
np.savez(out + "/weights.npz", *[np.asarray(a) for a in params])
print(json.dumps({"test_accuracy": float(accuracy(params, xt, yt))}))
"""


def test_accuracy(engine: str, result: dict, out: str) -> float | None:
    """The run's test accuracy: the reference prints it; digitlab writes its run folder's metrics.json."""
    if engine in ("tensorflow", "jax script"):
        return json.loads(result["stdout"].strip().splitlines()[-1])["test_accuracy"]
    from digitlab.runs import latest_run

    with open(latest_run(out) / "metrics.json") as f:
        return json.load(f).get("test_accuracy")


def first_epoch_line(stamps: list[tuple[float, str]]) -> float | None:
    """When the first epoch line came, in seconds from the start: "Epoch 1/5" (digitlab, Keras) or
    "epoch 1: ..." (the JAX script); None if none came."""
    return next((t for t, line in stamps if line.lstrip().startswith(("Epoch", "epoch"))), None)


def print_targets(results: dict[str, list[dict]]) -> None:
    """Issue 24's targets, each with what this run measured (per-round ratios, then their median)."""
    def per_round(numerator: str, denominator: str) -> float | None:
        if numerator not in results or denominator not in results:
            return None
        return statistics.median(n["seconds"] / d["seconds"] for n, d in zip(results[numerator], results[denominator]))

    first_epoch = [r["first_epoch_s"] for r in results.get("digitlab", []) if r["first_epoch_s"] is not None]
    targets = [  # (target, measured, bound, unit, whether the bound is a floor or a ceiling)
        ("`digitlab train` at least 3x faster than the tutorials' script", per_round("tensorflow", "digitlab"), 3, "x", "floor"),
        ("no slower than the plain JAX script", per_round("jax script", "digitlab"), 1, "x", "floor"),
        ("a first run within 1.5x of later ones", per_round("digitlab first run", "digitlab"), 1.5, "x", "ceiling"),
        ("the first epoch line within 2.5 s", statistics.median(first_epoch) if first_epoch else None, 2.5, " s", "ceiling"),
    ]
    print("\ntargets (issue 24)")
    for name, value, bound, unit, kind in targets:
        if value is None:
            print(f"  {name:<66} not measured (its engines were not run)")
            continue
        met = value >= bound if kind == "floor" else value <= bound
        print(f"  {name:<66} {value:6.2f}{unit:<3} {'met' if met else 'missed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mlp")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's recipe")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=60000, help="training images")
    parser.add_argument("--engines", default="digitlab,digitlab --no-plots,digitlab first run,jax script,tensorflow")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 1 epoch, 2,000 images")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.epochs, args.limit = 1, 1, 2000
    from digitlab.data.fetch import default_cache_dir
    from digitlab.errors import ConfigError
    from digitlab.models import config_for

    try:
        epochs = args.epochs or config_for(args.preset).epochs
    except ConfigError as e:
        parser.error(str(e))
    engines = [e.strip() for e in args.engines.split(",")]
    unknown = set(engines) - {"digitlab", "digitlab --no-plots", "digitlab first run", "tensorflow", "jax script"}
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
    if "jax script" in engines and args.preset != "mlp":
        parser.error("the plain JAX script is the default MLP's recipe only: --preset mlp")
    digitlab = shutil.which("digitlab", path=os.path.dirname(sys.executable)) or "digitlab"
    results: dict[str, list[dict]] = {e: [] for e in engines}
    for _ in range(args.rounds):
        for engine in engines:  # interleaved: the machine's noise hits every engine alike
            with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as fresh_cache:
                if engine == "tensorflow":
                    command = [sys.executable, "-c", REFERENCE, args.preset, str(epochs), str(args.limit), out]
                    env = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
                elif engine == "jax script":
                    command = [sys.executable, "-c", JAX_SCRIPT, str(epochs), str(args.limit), out]
                    env = {"KERAS_BACKEND": None}
                else:
                    command = [digitlab, "train", "--model", args.preset, "--epochs", str(epochs),
                               "--limit", str(args.limit), "--out", out, *(["--no-plots"] if "--no-plots" in engine else [])]
                    env = {"KERAS_BACKEND": None}  # digitlab picks each preset's backend
                    if engine == "digitlab first run":  # nothing compiled yet; the data as every run reads them
                        env |= {"DIGITLAB_CACHE": fresh_cache,
                                "DIGITLAB_DATA": os.environ.get("DIGITLAB_DATA") or str(default_cache_dir())}
                stamps: list = []
                seconds, peak_mb, stdout = run_child(command, env, stamps)
                result = {"seconds": seconds, "peak_mb": peak_mb, "stdout": stdout,
                          "first_epoch_s": first_epoch_line(stamps)}
                result["test_accuracy"] = test_accuracy(engine, result, out)
                results[engine].append(result)
    reference = statistics.median(r["seconds"] for r in results["tensorflow"]) if "tensorflow" in results else None
    print(f"\nwhole run of `{args.preset}`, {epochs} epoch(s), {args.limit:,} training images, {args.rounds} round(s): "
          "process start to exit")
    print(f"{'engine':<22}{'seconds (median, range)':<26}{'peak RSS MB':<14}{'test accuracy':<15}{'vs tensorflow':>13}"
          f"{'per round':>11}")
    for engine, rs in results.items():
        secs = [r["seconds"] for r in rs]
        med = statistics.median(secs)
        ratio = f"{reference / med:.2f}x" if reference else "-"
        # The ratio within each round (its runs ran one after the other), then their median: steadier
        # than the ratio of medians on a machine whose speed drifts by 20% over minutes.
        paired = (f"{statistics.median(t['seconds'] / r['seconds'] for t, r in zip(results['tensorflow'], rs)):.2f}x"
                  if reference else "-")
        acc = statistics.median(r["test_accuracy"] for r in rs)
        print(f"{engine:<22}{f'{med:.2f} ({min(secs):.2f} - {max(secs):.2f})':<26}"
              f"{statistics.median(r['peak_mb'] for r in rs):<14,.0f}{acc:<15.2%}{ratio:>13}{paired:>11}")
    print_targets(results)
    print("\nseconds by round: " + "; ".join(f"{engine} " + " ".join(f"{r['seconds']:.2f}" for r in rs)
                                            for engine, rs in results.items()))


if __name__ == "__main__":
    main()
