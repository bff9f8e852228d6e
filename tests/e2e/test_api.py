"""The notebook API: train, evaluate and plot from Python, on a real MNIST subset."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

import digitlab

pytestmark = pytest.mark.slow  # trainings


def test_train_evaluate_and_plot_from_python(tmp_path, data_dir):
    config = digitlab.config_for("mlp", epochs=2, train_limit=6000, out=str(tmp_path))
    run = digitlab.train(config, data_dir=data_dir, verbose=0)
    assert run.path.parent == tmp_path and (run.path / "model.keras").is_file()
    assert run.metrics["test_accuracy"] > 0.90 and len(run.history["loss"]) == 2
    again = digitlab.evaluate(run.path, data_dir=data_dir)
    assert abs(again.accuracy - run.metrics["test_accuracy"]) < 1e-6
    assert again.confusion.sum() == 10000
    fig = digitlab.reports.plots.plot_predictions(
        np.zeros((4, 28, 28), np.uint8), again.labels[:4], again.probabilities[:4]
    )
    assert isinstance(fig, Figure)


def test_same_seed_same_metrics(tmp_path, data_dir):
    config = digitlab.config_for("softmax", epochs=1, train_limit=3000, out=str(tmp_path), seed=5)
    a = digitlab.train(config, data_dir=data_dir, verbose=0, plots_enabled=False)
    b = digitlab.train(config, data_dir=data_dir, verbose=0, plots_enabled=False)
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    assert a.history == b.history
