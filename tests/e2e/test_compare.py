"""`digitlab compare` and the classic baselines end to end, on real MNIST and Fashion-MNIST subsets."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import invoke_cli, require_real_data, run_cli


@pytest.mark.slow
def test_compare_trains_every_pair_and_writes_the_leaderboard(tmp_path):
    require_real_data("fashion-mnist")
    done = run_cli("compare", "--models", "logistic-regression,knn", "--datasets", "mnist,fashion-mnist",
                   "--limit", "2000", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (folder,) = tmp_path.iterdir()
    rows = list(csv.DictReader(open(folder / "leaderboard.csv")))
    assert [(r["model"] in ("logistic-regression", "knn"), r["dataset"]) for r in rows] == [
        (True, "mnist"), (True, "mnist"), (True, "fashion-mnist"), (True, "fashion-mnist")]
    for r in rows:
        floor = 0.8 if r["dataset"] == "mnist" else 0.65
        assert float(r["test_accuracy"]) > floor, r
        assert float(r["size_bytes"]) > 0 and int(r["parameters"]) > 0 and float(r["predict_ms_per_1000"]) > 0
    mnist_rows = [r for r in rows if r["dataset"] == "mnist"]
    assert float(mnist_rows[0]["test_accuracy"]) >= float(mnist_rows[1]["test_accuracy"]), "best first"
    page = (folder / "leaderboard.html").read_text()
    assert '<img alt="test accuracy against training time" src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page, "self-contained"
    assert "| knn | fashion-mnist |" in (folder / "leaderboard.md").read_text()
    assert "Leaderboard" in done.stdout and "knn on fashion-mnist" in done.stdout

    fashion_knn = next(r["run"] for r in rows if r["model"] == "knn" and r["dataset"] == "fashion-mnist")
    report = run_cli("evaluate", fashion_knn, "--json")
    assert report.returncode == 0, report.stderr
    classes = [c["class"] for c in json.loads(report.stdout)["per_class"]]
    assert classes[0] == "T-shirt/top" and classes[-1] == "Ankle boot"


def test_bad_model_names_are_refused_before_training(tmp_path):
    done = invoke_cli("compare", "--models", "mlp,forest", "--out", str(tmp_path))
    assert done.returncode == 2 and '"forest" is not a preset' in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_classic_run_works_with_every_command(tmp_path, mnist):
    from PIL import Image

    done = run_cli("train", "--model", "random-forest", "--limit", "3000", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Fitting random-forest on mnist" in done.stdout
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run / "model.skops").is_file() and (run / "curves.png").is_file() and not (run / "model.keras").exists()
    report = (run / "report.html").read_text()
    assert "random-forest" in report and "Per class" in report and "The most confident mistakes" in report
    assert "src='data:image/png;base64," in report and "http://" not in report and "https://" not in report
    _, (x_test, y_test) = mnist
    Image.fromarray(255 - x_test[0]).resize((150, 150)).save(tmp_path / "digit.png")
    predicted = run_cli("predict", str(tmp_path / "digit.png"), "--model", str(run), "--json")
    assert predicted.returncode == 0 and json.loads(predicted.stdout)["digit"] == str(y_test[0])
    refused = run_cli("diagnose", str(run))
    assert refused.returncode == 1 and "scikit-learn model" in refused.stderr
    numpy_engine = run_cli("train", "--model", "knn", "--engine", "numpy", "--out", str(tmp_path))
    assert numpy_engine.returncode != 0 and "scikit-learn model" in numpy_engine.stderr


@pytest.mark.slow
def test_train_and_evaluate_on_your_own_csv_and_folder_data(tmp_path, mnist):
    from PIL import Image

    (x, y), _ = mnist
    csv_dir = tmp_path / "kaggle"
    csv_dir.mkdir()
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = [f"{y[i]}," + ",".join(map(str, x[i].ravel())) for i in range(3000)]
    (csv_dir / "train.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    done = run_cli("train", "--model", "mlp", "--epochs", "2", "--dataset", str(csv_dir / "train.csv"),
                   "--out", str(tmp_path / "runs"), "--no-plots")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split("Test accuracy: ")[1].split()[0]) > 0.85
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-mlp-train")
    again = run_cli("evaluate", str(run), cwd=tmp_path / "runs")  # the config holds an absolute path
    assert again.returncode == 0 and "Test accuracy" in again.stdout, again.stderr

    photos = tmp_path / "photos"
    for i in range(400):
        folder = photos / ("odd" if y[i] % 2 else "even")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - x[i]).resize((60, 60)).save(folder / f"{i}.png")
    done = run_cli("train", "--model", "logistic-regression", "--dataset", str(photos), "--out", str(tmp_path / "r2"))
    assert done.returncode == 0, done.stderr
    report = run_cli("evaluate", str(next((tmp_path / "r2").iterdir())), "--json")
    assert [c["class"] for c in json.loads(report.stdout)["per_class"]] == ["even", "odd"]

    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\n" + "7," + ",".join(["0"] * 780) + "\n")
    refused = run_cli("train", "--dataset", str(bad), "--out", str(tmp_path / "r3"))
    assert refused.returncode == 1 and "bad.csv line 2: expected 785 values, found 781" in refused.stderr
    assert "Traceback" not in refused.stderr
