"""The `digitlab` command, end to end on real MNIST: the installed command for trainings and
figures (the slow tier), its argument and user errors in process (invoke_cli), and once as installed."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.conftest import DATA_DIR, REPO, invoke_cli, require_real_data, run_cli


def plain(text: str) -> str:
    """Terminal output without Rich's box drawing and line wrapping."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real run: the default MLP, one epoch on all 60,000 training images."""
    require_real_data("mnist")
    out = tmp_path_factory.mktemp("runs")
    done = run_cli("train", "--epochs", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run, done.stdout


@pytest.mark.slow
def test_train_reaches_95_percent_in_one_epoch_and_writes_a_complete_run(trained):
    run, stdout = trained
    accuracy = float(re.search(r"Test accuracy: (0\.\d+)", stdout).group(1))
    assert accuracy >= 0.95
    assert "844/844" in stdout and "val_accuracy" in stdout and f"Run folder: {run}" in stdout.replace("\n", "")
    expected = {"model.keras", "config.json", "status.json", "history.json", "history.csv", "metrics.json",
                "confusion.csv", "samples.png", "curves.png", "confusion.png", "predictions.png", "probabilities.png",
                "report.html"}
    assert expected <= {p.name for p in run.iterdir()}
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "temporary files left behind"
    metrics = json.loads((run / "metrics.json").read_text())
    assert abs(metrics["test_accuracy"] - accuracy) < 1e-4 and metrics["test_images"] == 10000
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["epochs"], config["batch_size"], config["optimizer"]) == ("mlp", 1, 64, "adam")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "complete" and status["backend"] == "jax"
    history = json.loads((run / "history.json").read_text())
    assert set(history) == {"accuracy", "loss", "val_accuracy", "val_loss", "grad_norm/dense_1", "grad_norm/dense_2",
                            "update_ratio/dense_1", "update_ratio/dense_2"}
    assert (run / "history.csv").read_text().splitlines()[0].startswith("epoch,accuracy,loss,val_accuracy,val_loss,")
    report = (run / "report.html").read_text()
    assert "Confusion matrix" in report and "Environment" in report and f"{accuracy:.2%}" in report
    confusion = np.loadtxt(run / "confusion.csv", delimiter=",", skiprows=1)
    assert confusion.sum() == 10000 and abs(np.trace(confusion) / 10000 - accuracy) < 1e-4


@pytest.mark.slow
def test_evaluate_prints_the_report(trained):
    run, _ = trained
    done = run_cli("evaluate", str(run))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"Model: {run}")  # which run, said (the README walkthrough of 2026-12-07)
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"Test accuracy: {metrics['test_accuracy']:.4f}" in done.stdout
    for phrase in ("Confusion matrix", "Per-class report", "precision", "recall", "F1", "Most confused pairs", "taken for"):
        assert phrase in done.stdout


@pytest.mark.slow
def test_evaluate_json_agrees_with_scikit_learn(trained, mnist):
    from sklearn.metrics import accuracy_score, confusion_matrix

    run, _ = trained
    done = run_cli("evaluate", str(run / "model.keras"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"] == run.name  # the run folder the file is in
    import digitlab

    model = digitlab.load_model(run / "model.keras")
    _, (x_test, y_test) = mnist
    predicted = model.predict(x_test.reshape(-1, 784).astype("float32") / 255, verbose=0).argmax(1)
    assert np.array_equal(np.array(report["confusion"]), confusion_matrix(y_test, predicted))
    assert abs(report["test_accuracy"] - accuracy_score(y_test, predicted)) < 1e-9


@pytest.mark.slow
def test_evaluate_answers_with_the_runs_numpy_export_and_never_with_a_stale_one(trained, tmp_path):
    """Issue 24: `evaluate` on a float32 run uses its inference.npz (what predict answers with),
    without importing Keras: 3.3 s -> 0.9 s. An export that is not of the model as it is now (a
    stale or foreign file) is ignored: the model itself is evaluated."""
    import shutil

    run, _ = trained
    code = ("import json, sys; from digitlab.evaluation.evaluate import evaluate; ev = evaluate(sys.argv[1]); "
            "print(json.dumps([ev.accuracy, ev.loss, ev.compute_precision, 'keras' in sys.modules]))")

    def evaluated(folder):
        done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                              env={**os.environ, "DIGITLAB_DATA": str(DATA_DIR)}, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    accuracy, loss, precision, keras_loaded = evaluated(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert not keras_loaded and precision == "float32"
    assert accuracy == metrics["test_accuracy"] and abs(loss - metrics["test_loss"]) < 1e-5

    stale = tmp_path / run.name
    shutil.copytree(run, stale)
    with np.load(stale / "inference.npz") as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["source_sha256"] = "0" * 64  # the export of some other model file
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays = {k: (np.zeros_like(v) if k.endswith("_kernel") else v) for k, v in arrays.items()}  # and useless
    np.savez(stale / "inference.npz", **arrays)
    accuracy, loss, precision, keras_loaded = evaluated(stale)
    assert keras_loaded and accuracy == metrics["test_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["samples", "curves", "confusion", "predictions", "probabilities"])
def test_plot_each_kind(trained, tmp_path, kind):
    run, _ = trained
    target = tmp_path / f"{kind}.png"
    done = run_cli("plot", kind, str(run), "--output", str(target), "--index", "3", "--mistakes")
    assert done.returncode == 0, done.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_plot_samples_as_training_distorts_them(trained, tmp_path):
    run, _ = trained
    target = tmp_path / "distorted.png"
    done = run_cli("plot", "samples", "--augment", "elastic", "--count", "10", "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = run_cli("plot", "curves", str(run), "--augment", "affine", "--output", str(tmp_path / "c.png"))
    assert done.returncode == 1 and "applies to the samples figure, not to curves" in plain(done.stderr)
    assert not (tmp_path / "c.png").exists()


@pytest.mark.slow
def test_models_lists_every_preset_with_parameters():
    done = run_cli("models")
    assert done.returncode == 0, done.stderr
    for phrase in ("softmax", "mlp-dropout", "mlp-wide", "mlp-small", "cnn", "640,890", "101,770", "407,050"):
        assert phrase in done.stdout


@pytest.mark.slow
def test_predictions_grid_with_nothing_to_show(trained, tmp_path):
    run, _ = trained
    target = tmp_path / "none.png"
    done = run_cli("plot", "predictions", str(run), "--mistakes", "--count", "1", "--output", str(target))
    assert done.returncode == 0, done.stderr  # one mistake, or "no images to show": never a crash


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["train", "--model", "cnn-fats"], '"cnn-fats" is not a preset'),
        (["train", "--epochs", "0"], "Invalid value for '--epochs'"),
        (["train", "--seed", "-1"], "Invalid value for '--seed'"),
        (["train", "--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["train", "--validation", "test", "--validation-split", "0.2"], "has no effect with --validation test"),
        (["plot", "samples", "--output", "/no/such/folder/x.png"], "folder /no/such/folder does not exist"),
        (["plot", "samples", "--output", "x.notanimage"], "matplotlib cannot write .notanimage files"),
        (["train", "--epochs", "three"], "integer"),
        (["train", "--optimizer", "adamm"], '"adamm" is not an optimizer'),
        (["train", "--validation-split", "1.5"], "--validation-split must be in [0, 1)"),
        (["train", "--learning-rate", "0"], "--learning-rate must be greater than 0"),
        (["train", "--dataset", "kmnist"], '"kmnist" is not a data set'),
        (["plot", "histogram"], '"histogram" is not a plot kind'),
        (["train", "--no-such-flag"], "No such option"),
        (["train", "--augment", "wobbly"], '"wobbly" is not an augmentation. Choose one of: none, affine, elastic'),
    ],
)
def test_bad_arguments_exit_2_with_a_message_and_no_traceback(args, phrase):
    done = invoke_cli(*args)
    assert done.returncode == 2
    assert phrase in plain(done.stderr)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["train", "evaluate", "plot", "reproduce"])
def test_help_shows_every_default_in_its_own_words(command):
    """Help texts are plain text: Rich markup once ate "[default: the preset's]" as a tag and left
    "Epochs ." (the docs' review of 2026-12-07)."""
    done = invoke_cli(command, "--help")
    assert done.returncode == 0
    assert "[default:" in done.stdout and not re.search(r"\w \.(\s|$)", done.stdout), done.stdout


def test_every_benchmark_script_prints_its_help():
    """`python benchmarks/X.py --help` for each script the docs name (argparse %-formats help
    texts: a "90%" in one made --help a TypeError)."""
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, f"{script.name}: {done.stderr[-500:]}"


def test_user_errors_exit_1_with_one_line(tmp_path):
    done = invoke_cli("evaluate", str(tmp_path / "nothing"))
    assert done.returncode == 1
    assert "no such run folder or model file" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "fake.keras").write_text("not a zip")
    done = invoke_cli("evaluate", str(tmp_path / "fake.keras"))
    assert done.returncode == 1 and "not a Keras model file" in done.stderr and "Traceback" not in done.stderr
    import zipfile

    with zipfile.ZipFile(tmp_path / "fake.keras", "w") as z:  # a zip archive, but no model in it
        z.writestr("notes.txt", "no model here")
    done = invoke_cli("evaluate", str(tmp_path / "fake.keras"))
    assert done.returncode == 1 and "cannot load the model" in done.stderr and "Traceback" not in done.stderr
    done = invoke_cli("evaluate", "--runs", str(tmp_path))
    assert done.returncode == 1 and "no complete run" in done.stderr
    done = invoke_cli("train", "--model", "knn", "--augment", "affine", "--out", str(tmp_path / "runs"))
    assert done.returncode == 1 and "scikit-learn model fitted once" in plain(done.stderr)
    done = invoke_cli("train", "--engine", "numpy", "--augment", "elastic", "--out", str(tmp_path / "runs"))
    assert done.returncode == 1 and "NumPy engine trains on the images as they are" in plain(done.stderr)
    assert not (tmp_path / "runs").exists()  # refused before any run folder was made
    odd = tmp_path / "[bold]odd[/x]"
    done = invoke_cli("evaluate", str(odd))
    assert done.returncode == 1 and f"{odd}: no such run folder" in plain(done.stderr)
    assert "Traceback" not in done.stderr


def test_the_installed_command_turns_mistakes_into_messages_as_in_process(tmp_path):
    """The tests above run main() in process; this is the console script itself (pyproject's
    digitlab.cli.main:main) from a cold start, once per kind of mistake: a bad argument exits 2 with
    Typer's message, a user error exits 1 with one line on stderr; never a traceback."""
    done = run_cli("train", "--epochs", "0")
    assert done.returncode == 2 and "Invalid value for '--epochs'" in plain(done.stderr)
    assert "Traceback" not in done.stderr
    done = run_cli("evaluate", str(tmp_path / "nothing"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'nothing'}: no such run folder or model file"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture
def mirror_server():
    """Serves ../shared/data over HTTP on 127.0.0.1, laid out as <dataset>/<file>."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DATA_DIR))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_the_real_files_over_http(mirror_server, tmp_path):
    require_real_data("mnist")
    env = {"DIGITLAB_MIRROR": mirror_server, "DIGITLAB_CACHE": str(tmp_path), "DIGITLAB_DATA": ""}
    done = run_cli("fetch", "mnist", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" ok ") == 4
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (tmp_path / "mnist" / name).read_bytes() == (DATA_DIR / "mnist" / name).read_bytes()
    offline = {**env, "DIGITLAB_MIRROR": "http://127.0.0.1:9/", "DIGITLAB_CACHE": str(tmp_path / "empty")}
    done = run_cli("fetch", "mnist", env=offline)
    assert done.returncode == 1 and "could not fetch mnist" in done.stderr and "--data-dir" in done.stderr


@pytest.mark.slow
def test_cnn_trains_with_the_compiled_loop(tmp_path):
    cache = tmp_path / "own-cache"  # not the session's shared compiled programs: this run must write its own
    # The loop trains the CNNs on CPUs where TensorFlow runs without oneDNN; TF_ENABLE_ONEDNN_OPTS=0
    # makes this CPU one of them, whatever it is.
    done = run_cli("train", "--model", "cnn", "--epochs", "1", "--limit", "10000", "--out", str(tmp_path / "runs"),
                   "--no-plots", env={"DIGITLAB_CACHE": str(cache), "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert done.returncode == 0, done.stderr
    (run,) = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["backend"] == "jax"
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.85
    assert "Epoch 1/1" in done.stdout and "val_accuracy" in done.stdout
    compiled = cache / "compiled"  # the next run of this recipe skips compiling
    assert any(p.is_file() for p in compiled.rglob("*")), "no compiled program was cached"
    assert not list(run.glob("*.png"))


@pytest.mark.slow
def test_cnn_trains_on_tensorflow_in_the_precision_fastest_here(tmp_path):
    """Keras' fit on TensorFlow, the CNNs' path where TensorFlow runs oneDNN's kernels (KERAS_BACKEND
    makes it this run's on any CPU): several steps per compiled call, mixed bfloat16 where the CPU has
    bfloat16 instructions (--precision auto, the recipe's); the saved model computes in float32."""
    from digitlab import load_model
    from digitlab.models.backend import bfloat16_is_fast

    precision = "mixed_bfloat16" if bfloat16_is_fast() else "float32"
    done = run_cli("train", "--model", "cnn-fast", "--epochs", "1", "--limit", "6000", "--out",
                   str(tmp_path / "runs"), "--no-plots", env={"KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr
    assert "43/43" in done.stdout and "val_accuracy" in done.stdout  # 5,400 images in batches of 128
    assert ("mixed bfloat16" in done.stdout) == (precision == "mixed_bfloat16"), done.stdout
    assert "oneDNN" not in done.stderr and "warning" not in done.stderr, done.stderr
    (run,) = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["backend"] == "tensorflow"
    assert json.loads((run / "config.json").read_text())["precision"] == precision  # what ran, not "auto"
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.9
    model = load_model(run / "model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert model.steps_per_execution == 1  # a .keras file that loads on every backend (PyTorch's takes only 1)
    # tested, and evaluated again, in the arithmetic it trained in: the same images right
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["compute_precision"] == precision
    done = run_cli("evaluate", str(run), "--json", env={"KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert again["compute_precision"] == precision and abs(again["test_accuracy"] - metrics["test_accuracy"]) <= 2e-4
    if precision == "mixed_bfloat16":  # else it trained in float32 and the evaluation above was in float32
        done = run_cli("evaluate", str(run), "--precision", "float32", env={"KERAS_BACKEND": "tensorflow"})
        assert done.returncode == 0 and "in mixed bfloat16" not in done.stdout, done.stdout


@pytest.mark.slow
def test_keras_fit_on_tensorflow_trains_on_distorted_copies_without_log_noise(tmp_path, monkeypatch):
    """The other training path: Keras' own fit (here on TensorFlow) with --augment, and a quiet stderr."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # digitlab's own default, not the caller's
    done = run_cli("train", "--model", "mlp", "--epochs", "2", "--limit", "3000", "--augment", "affine", "--out",
                   str(tmp_path / "runs"), "--no-plots", env={"KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr
    assert "affine augmentation" in done.stdout
    assert "cuInit" not in done.stderr and "oneDNN" not in done.stderr, done.stderr  # TensorFlow's C++ chatter
    (run,) = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["backend"] == "tensorflow"
    assert json.loads((run / "config.json").read_text())["augment"] == "affine"
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.8


@pytest.mark.slow
def test_backend_benchmark_smoke_run():
    """benchmarks/backends.py must keep working; its timings are printed, never asserted."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "backends.py"), "--quick"],
        capture_output=True, text=True, timeout=900, env={**env, "DIGITLAB_DATA": str(DATA_DIR)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("mlp:", "digitlab", "tensorflow", "numpy", "floor:", "vs tensorflow", "vs floor"):
        assert name in done.stdout


@pytest.mark.slow
def test_kernel_and_time_to_accuracy_benchmarks_smoke_run():
    """benchmarks/kernels.py and time_to_accuracy.py keep working; timings printed, never asserted."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR)}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kernels.py"), "--quick"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "conv2 3x3, 32 -> 64" in done.stdout and "speed-up" in done.stdout
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "time_to_accuracy.py"), "--quick"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith(("digitlab ", "tensorflow "))}
    assert set(rows) == {"digitlab", "tensorflow"}
    assert all("not reached" not in row for row in rows.values()), done.stdout  # 90% in 3 epochs: both get there


@pytest.mark.slow
def test_whole_run_benchmark_smoke_run():
    """benchmarks/whole_run.py keeps working (both stacks train and report); timings never asserted."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"DIGITLAB_DATA": str(DATA_DIR)}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "whole_run.py"), "--quick",
                           "--engines", "digitlab,digitlab first run,jax script,tensorflow"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("digitlab", "jax script", "tensorflow"))]
    assert [r.split("  ")[0] for r in rows] == ["digitlab", "digitlab first run", "jax script", "tensorflow"], done.stdout
    assert all(re.search(r"\d\d\.\d\d%", r) for r in rows), done.stdout  # each run's test accuracy
    targets = done.stdout.split("targets (issue 24)")[1].splitlines()[1:5]
    assert all(re.search(r"\d+\.\d\d(x| s) +(met|missed)$", t) for t in targets), done.stdout  # all four measured
