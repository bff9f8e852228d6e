"""Prediction speed: digitlab against the tutorials' stack (Keras + TensorFlow), in the same run.

    python benchmarks/inference.py --model runs/<run> [--rounds 5]

(d) throughput: the 10,000 MNIST test images, batch 1,000, in a warm process: digitlab's NumPy
    inference path (`inference.npz`), digitlab's Keras engine (`Recognizer.load(run,
    engine="keras")`: the run's backend, and the precision it trained in where that is fast here;
    one `predict_on_batch` call per batch, as `digitlab evaluate`),
    plain Keras on JAX, plain Keras on TensorFlow in float32 (the reference);
(e) cold start: wall time of a whole process that predicts one PNG: `digitlab predict one.png`
    against a script that loads the `.keras` file with Keras + TensorFlow and calls `predict`, as the
    tutorials do (the image only resized and inverted);
(f) peak memory (max RSS) of each of those processes.
Rounds are interleaved across stacks; medians are printed, with ratios against the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_COLD = """
import sys, numpy as np, keras
from PIL import Image
model = keras.saving.load_model(sys.argv[1])
x = 255 - np.asarray(Image.open(sys.argv[2]).convert("L").resize((28, 28)), np.float32)
p = model.predict((x / 255).reshape(1, *model.input_shape[1:]), verbose=0)
print(int(p.argmax()))
"""


def run_child(command: list[str], env: dict | None = None, stamps: list | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process; exits with its stderr's end if it fails.

    `env` is laid over this process's environment; a variable set to None there is left out.
    `stamps`, if given, receives (seconds since the start, line) for each line of stdout as it came."""
    started = time.perf_counter()
    merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: a chatty child cannot block on it
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=merged)
        lines = []
        for line in process.stdout:
            lines.append(line)
            if stamps is not None:
                stamps.append((time.perf_counter() - started, line))
        out = "".join(lines)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{command} failed with status {process.returncode}:\n{err.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out


def throughput_child(model_dir: str, engine: str, data_dir: str | None) -> None:
    """Run in a child: images per second over the 10,000 test images (best of 3 passes, warm).

    "numpy" and "keras" are digitlab's `Recognizer` (its NumPy path; its Keras engine, on the backend
    and in the precision digitlab chooses for the run here); "jax" and "tensorflow" load the
    `.keras` file with plain Keras on that backend, in float32, as the tutorials do."""
    if engine in ("jax", "tensorflow"):
        os.environ["KERAS_BACKEND"] = engine
        import keras

        model = keras.saving.load_model(Path(model_dir) / "model.keras")
        backend, precision = engine, "float32"
    else:
        from digitlab.recognize import Recognizer

        model = Recognizer.load(model_dir, engine="auto" if engine == "numpy" else "keras").model
        keras = sys.modules.get("keras")
        backend = keras.backend.backend() if keras and engine == "keras" else "numpy"
        precision = model.layers[0].dtype_policy.name if engine == "keras" else "float32"
    from digitlab import load_dataset
    from digitlab.data.arrays import shape_for

    _, (x_test, y_test) = load_dataset("mnist", data_dir=data_dir)
    x = shape_for(x_test, tuple(model.input_shape[1:]))
    if engine in ("jax", "tensorflow"):
        predict = lambda images: model.predict(images, batch_size=1000, verbose=0)  # noqa: E731
    else:  # as `digitlab evaluate` and the Recognizer predict
        from digitlab.models.numpy_model import predict_batches

        predict = lambda images: predict_batches(model, images, 1000)  # noqa: E731
    predict(x[:1000])  # compile / warm up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        p = predict(x)
        best = min(best, time.perf_counter() - started)
    accuracy = float((p.argmax(axis=1) == y_test).mean())
    print(json.dumps({"images_per_s": len(x) / best, "accuracy": accuracy, "backend": backend, "precision": precision}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a run folder with model.keras and inference.npz")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    parser.add_argument("--child", choices=["numpy", "keras", "jax", "tensorflow"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return throughput_child(args.model, args.child, args.data_dir)
    run = Path(args.model)
    if not (run / "inference.npz").is_file():
        raise SystemExit(f"{run}: no inference.npz; train the run with this version of digitlab.")
    from PIL import Image

    from digitlab import load_dataset

    _, (x_test, y_test) = load_dataset("mnist", data_dir=args.data_dir)
    one = Path(tempfile.mkdtemp()) / "one.png"
    Image.fromarray(255 - x_test[0]).resize((200, 200)).save(one)
    exe = str(Path(sys.executable).parent / "digitlab")
    me = [sys.executable, __file__, "--model", str(run)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    cold = {
        "digitlab predict (NumPy path)": ([exe, "predict", str(one), "--model", str(run)], None),
        "Keras + TensorFlow load and predict (reference)": (
            [sys.executable, "-c", REFERENCE_COLD, str(run / "model.keras"), str(one)], {"KERAS_BACKEND": "tensorflow"}),
    }
    throughput = {"digitlab NumPy path": "numpy", "digitlab Keras engine": "keras", "Keras + JAX": "jax",
                  "Keras + TensorFlow (reference)": "tensorflow"}
    walls = {k: [] for k in cold}
    peaks = {k: [] for k in cold}
    speeds = {k: [] for k in throughput}
    accuracy, how = {}, {}
    tpeaks = {k: [] for k in throughput}
    for _ in range(args.rounds):
        for name, (command, env) in cold.items():
            wall, peak, _ = run_child(command, env)
            walls[name].append(wall)
            peaks[name].append(peak)
        for name, engine in throughput.items():
            _, peak, out = run_child([*me, "--child", engine])
            result = json.loads(out)
            speeds[name].append(result["images_per_s"])
            accuracy[name], how[name] = result["accuracy"], f"{result['backend']}, {result['precision']}"
            tpeaks[name].append(peak)
    ref_cold = statistics.median(walls["Keras + TensorFlow load and predict (reference)"])
    print(f"(e, f) cold start, one 200x200 PNG, {args.rounds} interleaved rounds: median wall s (range), peak RSS MB")
    for name in cold:
        m = statistics.median(walls[name])
        print(f"  {name:50s} {m:6.2f} s ({min(walls[name]):.2f} - {max(walls[name]):.2f})  "
              f"{statistics.median(peaks[name]):6.0f} MB  {ref_cold / m:5.2f}x")
    ref_speed = statistics.median(speeds["Keras + TensorFlow (reference)"])
    print("(d, f) throughput, 10,000 test images, batch 1,000, warm: median images/s (range), peak RSS MB")
    for name in throughput:
        m = statistics.median(speeds[name])
        print(f"  {name + ' (' + how[name] + ')':50s} {m:9,.0f} ({min(speeds[name]):,.0f} - {max(speeds[name]):,.0f})  "
              f"{statistics.median(tpeaks[name]):6.0f} MB  {m / ref_speed:5.2f}x  accuracy {accuracy[name]:.2%}")


if __name__ == "__main__":
    main()
