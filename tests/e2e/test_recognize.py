"""Recognition of real-looking files end to end: predict, read, bad input, the Python API."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.images.synthetic import compose_number, number_accuracy, rendered_accuracy
from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # every test reads with a trained model (mlp_run)


@pytest.fixture(scope="module")
def model_run(mlp_run):
    return mlp_run


@pytest.fixture(scope="module")
def recognizer(model_run):
    from digitlab.recognize import Recognizer

    return Recognizer.load(model_run)


def test_rendered_files_are_read_within_1_5_points_of_the_raw_arrays(recognizer, mnist, tmp_path):
    _, (x_test, y_test) = mnist
    rng = np.random.default_rng(0)
    pick = rng.choice(len(x_test), 1000, replace=False)
    result = rendered_accuracy(recognizer, x_test[pick], y_test[pick], tmp_path, rng)
    assert result["raw_accuracy"] > 0.96
    assert result["file_accuracy"] >= result["raw_accuracy"] - 0.015, result
    assert min(result["per_style"].values()) > 0.9, result["per_style"]
    assert len(list(tmp_path.iterdir())) == 1000


def test_numbers_are_read(recognizer, mnist):
    _, (x_test, y_test) = mnist
    result = number_accuracy(recognizer, x_test, y_test, 150, np.random.default_rng(1))
    # The MLP; the CNN's figures (the target is >= 90% whole strings) are in BENCHMARKS.md.
    assert result["per_digit_accuracy"] > 0.9 and result["whole_string_accuracy"] > 0.6, result


def test_api_accepts_paths_pil_images_and_arrays(recognizer, mnist, tmp_path):
    _, (x_test, y_test) = mnist
    path = tmp_path / "seven.png"
    Image.fromarray(255 - x_test[0]).resize((120, 120)).save(path)
    results = recognizer.predict([path, Image.fromarray(x_test[1]), x_test[2], str(path).encode() and path.read_bytes()])
    assert [r.digit for r in results] == ["7", "2", "1", "7"] and y_test[:3].tolist() == [7, 2, 1]
    assert all(r.status == "ok" and 0.5 <= r.probability <= 1 and len(r.top) == 3 for r in results)
    reading = recognizer.read(compose_number([x_test[i] for i in (3, 2, 1)], np.random.default_rng(0), 0.0))
    assert reading.text == "012" and len(reading.boxes) == 3


@pytest.fixture
def batch(tmp_path, mnist):
    """Three good files and one of each kind of bad input."""
    _, (x_test, _) = mnist
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(255 - x_test[i]).resize((200, 200)).save(folder / f"good{i}.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not a picture")
    good = (folder / "good0.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    Image.new("L", (300, 300), 255).save(folder / "white.png")
    Image.new("1", (40_000, 40_000)).save(folder / "bomb.png")
    return folder


def test_predict_cli_reports_each_bad_file_and_goes_on(model_run, batch, tmp_path):
    prepared = tmp_path / "prepared"
    done = run_cli("predict", str(batch), "--model", str(model_run), "--save-prepared", str(prepared))
    assert done.returncode == 1
    assert "5 of 8 image(s) could not be read" in done.stderr and "Traceback" not in done.stderr
    out = " ".join(done.stdout.split())
    for name, phrase in [("empty.png", "the file is empty"), ("text.png", "not a PNG, JPEG, GIF, BMP, WebP, TIFF or PGM/PPM image"),
                         ("truncated.png", "the image is damaged or truncated"),
                         ("white.png", "the image is blank after thresholding"),
                         ("bomb.png", "1,600,000,000 pixels is more than the limit of 40,000,000")]:
        assert f"{batch / name}: {phrase}" in out
    assert f"{batch / 'good0.png'}: 7 (" in out and "top 3:" in out
    saved = sorted(p.name for p in prepared.iterdir())
    assert len(saved) == 3 and np.asarray(Image.open(prepared / saved[0])).shape == (28, 28)


def test_predict_json_and_csv(model_run, batch):
    done = run_cli("predict", str(batch / "good1.png"), str(batch / "good2.png"), "--model", str(model_run), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["digit"] for r in rows] == ["2", "1"] and rows[0]["top"][0][0] == "2"
    done = run_cli("predict", str(batch), "--model", str(model_run), "--csv", "--threshold", "1.0")
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(table) == 8 and {r["status"] for r in table} == {"unsure", "error"}
    assert all(r["digit"] == "" for r in table)


def test_read_cli_draws_boxes(model_run, mnist, tmp_path):
    _, (x_test, _) = mnist
    image = tmp_path / "number.png"
    compose_number([x_test[i] for i in (3, 2, 1, 18)], np.random.default_rng(2), 0.0).save(image)
    boxes = tmp_path / "boxes.png"
    done = run_cli("read", str(image), "--model", str(model_run), "--save-boxes", str(boxes), "--json")
    assert done.returncode == 0, done.stderr
    reading = json.loads(done.stdout)
    assert reading["text"] == "0123" and len(reading["digits"]) == 4
    assert Image.open(boxes).size == Image.open(image).size
    done = run_cli("read", str(tmp_path / "missing.png"), "--model", str(model_run))
    assert done.returncode == 1 and "no such file" in done.stdout and "1 of 1 image(s) could not be read" in done.stderr


def test_read_cli_takes_several_files_and_folders_streamed_as_json_lines_or_csv(model_run, mnist, tmp_path):
    """Issue 25 (4): `read` took one file; now files and folders like `predict`, one answer per image
    in order, a bad image an error row among the others, exit 1 if any failed."""
    _, (x_test, _) = mnist
    folder = tmp_path / "forms"
    (folder / "b").mkdir(parents=True)
    compose_number([x_test[i] for i in (3, 2, 1, 18)], np.random.default_rng(2), 0.0).save(folder / "a.png")
    compose_number([x_test[i] for i in (0, 1)], np.random.default_rng(3), 0.0).save(folder / "b" / "c.png")
    (folder / "b" / "d.png").write_bytes(b"not a png")
    single = tmp_path / "single.png"
    compose_number([x_test[i] for i in (2, 1)], np.random.default_rng(4), 0.0).save(single)
    done = run_cli("read", str(folder), str(single), "--model", str(model_run), "--json")
    assert done.returncode == 1 and "1 of 4 image(s) could not be read" in done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["source"]).name for r in rows] == ["a.png", "c.png", "d.png", "single.png"]
    assert [r["text"] for r in rows] == ["0123", "72", "", "12"] and [r["status"] for r in rows] == ["ok", "ok", "error", "ok"]
    assert "d.png" in rows[2]["message"] and len(rows[0]["digits"]) == 4
    done = run_cli("read", str(folder / "a.png"), str(single), "--model", str(model_run), "--csv",
                   "--save-boxes", str(tmp_path / "boxes"))
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert done.returncode == 0 and [r["text"] for r in table] == ["0123", "12"]
    assert len(table[0]["probabilities"].split()) == 4 and len(table[0]["boxes"].split()) == 4
    assert sorted(p.name for p in (tmp_path / "boxes").iterdir()) == ["000000-a.png", "000001-single.png"]
    done = run_cli("read", str(folder / "a.png"), str(single), "--model", str(model_run))
    assert done.returncode == 0 and "0123" in done.stdout and "single.png" in done.stdout


def test_the_recognizers_precision_is_checked_and_applied(model_run, mnist):
    from digitlab.errors import ConfigError
    from digitlab.data.arrays import shape_for
    from digitlab.recognize import Recognizer

    with pytest.raises(ConfigError, match="NumPy path .* computes in float32; mixed bfloat16 needs a Keras model"):
        Recognizer.load(model_run, precision="mixed_bfloat16")
    with pytest.raises(ConfigError, match='precision "fp16" is not one of auto, float32, mixed_bfloat16'):
        Recognizer.load(model_run, engine="keras", precision="fp16")
    _, (x_test, y_test) = mnist
    x = shape_for(x_test[:2000], (28, 28))
    exact = Recognizer.load(model_run, engine="keras")  # trained in float32: predicts in float32
    assert {layer.compute_dtype for layer in exact.model.layers} == {"float32"}
    mixed = Recognizer.load(model_run, engine="keras", precision="mixed_bfloat16")
    assert mixed.model.layers[0].compute_dtype == "bfloat16" and mixed.model.layers[-1].compute_dtype == "float32"
    p32, p16 = exact.probabilities(x), mixed.probabilities(x)
    assert (p32.argmax(axis=1) != p16.argmax(axis=1)).mean() < 0.005 and np.abs(p32 - p16).max() < 0.05
    assert (p16.argmax(axis=1) == y_test[:2000]).mean() > 0.95


def test_evaluate_reports_calibration(model_run):
    assert json.loads((model_run / "calibration.json").read_text())["temperature"] > 0
    done = run_cli("evaluate", str(model_run))
    assert done.returncode == 0, done.stderr
    assert "after temperature scaling" in done.stdout


def test_the_numpy_inference_path_equals_keras_on_the_10000_test_images(model_run, mnist):
    from digitlab.data.arrays import shape_for
    from digitlab.recognize import Recognizer

    _, (x_test, _) = mnist
    fast, keras_rec = Recognizer.load(model_run), Recognizer.load(model_run, engine="keras")
    assert type(fast.model).__name__ == "NumpyModel" and (model_run / "inference.npz").is_file()
    x = shape_for(x_test, (784,))
    np.testing.assert_allclose(fast.model.predict(x), keras_rec.model.predict(x, verbose=0), atol=1e-5)


def test_predict_from_a_cold_start_imports_no_training_framework(model_run, mnist, tmp_path):
    import subprocess
    import sys

    _, (x_test, _) = mnist
    Image.fromarray(255 - x_test[0]).save(tmp_path / "one.png")
    code = ("import sys; from digitlab.cli.main import main; sys.argv = ['digitlab', 'predict', sys.argv[1], '--model', "
            "sys.argv[2]];\ntry: main()\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "one.png"), str(model_run)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "one.png: 7" in done.stdout and done.stdout.strip().endswith("[]"), done.stdout


def test_inference_benchmark_smoke(model_run):
    """benchmarks/inference.py runs end to end (one round); it asserts no timings."""
    import subprocess
    import sys

    from tests.conftest import DATA_DIR, REPO

    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "inference.py"), "--model", str(model_run),
                           "--rounds", "1", "--data-dir", str(DATA_DIR)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "cold start" in done.stdout and "Keras + TensorFlow (reference)" in done.stdout
