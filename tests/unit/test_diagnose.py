"""Diagnostics on networks built to be sick: known dead units, saturated layers, vanishing gradients."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.evaluation.diagnose import diagnose, diagnose_network
from digitlab.data.arrays import shape_for
from digitlab.scratch import mlp
from digitlab.scratch.convert import to_keras

DEAD = [3, 7, 20, 21, 30]


def images(mnist, n=3000):
    (x, _), _ = mnist
    return shape_for(x[:n], (784,))


def test_units_with_a_bias_of_minus_100_are_reported_dead_exactly(mnist):
    net = mlp([784, 32, 16, 10], "relu", rng=np.random.default_rng(0))
    net.dense_layers()[0].params["bias"][DEAD] = -100
    result = diagnose_network(net, images(mnist))
    first, second = result.layers
    assert first.dead_units == DEAD
    assert first.dead_fraction == len(DEAD) / 32
    assert first.verdict == "16% dead units"
    assert second.dead_units == [] and second.verdict == "healthy"


def test_a_large_std_sigmoid_network_is_saturated(mnist):
    net = mlp([784, 64, 64, 64, 10], "sigmoid", rng=np.random.default_rng(0), init="normal", std=4.0)
    result = diagnose_network(net, images(mnist, 1000))
    assert all(r.saturated_fraction > 0.5 for r in result.layers)
    # saturated, not "gradients vanish through them": with weights this large their norms need not
    # (the review of 2026-12-07: the docs' N(0, 4) run had dense_1's the largest)
    assert all(r.verdict.startswith("saturated (") and "vanish" not in r.verdict for r in result.layers)


def test_a_layer_whose_gradient_is_tiny_is_reported_vanishing(mnist):
    net = mlp([784, 32, 32, 10], "relu", rng=np.random.default_rng(0))
    history = {"grad_norm/dense_1": [0.5, 0.001], "grad_norm/dense_2": [0.5, 0.3], "grad_norm/dense_3": [0.5, 0.4],
               "update_ratio/dense_1": [0.1, 0.0001]}
    first, second = diagnose_network(net, images(mnist, 500), history).layers
    assert first.verdict == "vanishing gradients (0.25% of the largest layer's norm)"
    assert first.update_ratio == 0.0001 and second.verdict == "healthy"


def test_a_last_epoch_whose_norms_are_not_numbers_gives_no_gradient_verdict(mnist):
    """A null (history.json allows them) raised a TypeError; a diverged epoch's NaN called every layer's
    gradients vanishing (third review)."""
    net = mlp([784, 32, 32, 10], "relu", rng=np.random.default_rng(0))
    for bad in (None, float("nan"), float("inf"), -20.0):
        history = {"grad_norm/dense_1": [0.5, bad], "grad_norm/dense_2": [0.5, 0.3], "grad_norm/dense_3": [0.5, 0.4]}
        result = diagnose_network(net, images(mnist, 300), history)
        assert not result.history_used and all(r.verdict == "healthy" and r.grad_norm is None for r in result.layers)
        history = {"grad_norm/dense_1": [0.5, 0.3], "grad_norm/dense_2": [0.5, 0.3], "update_ratio/dense_1": [0.1, bad]}
        result = diagnose_network(net, images(mnist, 300), history)
        assert not result.history_used and all(r.verdict == "healthy" and r.grad_norm is None for r in result.layers)


def test_a_network_without_hidden_layers_says_so(mnist):
    from rich.console import Console

    from digitlab.cli.console import print_diagnosis

    result = diagnose_network(mlp([784, 10], "relu", rng=np.random.default_rng(0)), images(mnist, 300))
    console = Console(record=True, width=200)
    print_diagnosis(console, result)
    assert result.layers == [] and console.export_text().startswith("No hidden layers")


def test_a_healthy_trained_preset_is_reported_healthy(tmp_path, data_dir):
    import digitlab

    run = digitlab.train(digitlab.config_for("mlp", epochs=1, train_limit=10000, out=str(tmp_path)),
                         data_dir=data_dir, verbose=0, plots_enabled=False)
    assert "grad_norm/dense_1" in run.history and "update_ratio/dense_2" in run.history
    # a notebook shows a run in a line, not its 10,000 x 10 probabilities (the README walkthrough of 2026-12-07)
    assert repr(run) == f"Run({str(run.path)!r}, mlp on mnist, test_accuracy={run.metrics['test_accuracy']:.4f})"
    result = diagnose(run.path, data_dir=data_dir, limit=5000)
    assert result.history_used
    from digitlab.errors import ConfigError

    for limit in (0, -5, 2.5):  # -5 diagnosed all but 5 images, 0 raised a KeyError (third review)
        with pytest.raises(ConfigError, match="limit is a number of training images, at least 1"):
            diagnose(run.path, data_dir=data_dir, limit=limit)
    assert [r.verdict for r in result.layers] == ["healthy"]
    assert result.layers[0].dead_fraction < 0.1


def test_a_bare_model_file_is_diagnosed_from_activations_alone(tmp_path, data_dir):
    net = mlp([784, 32, 10], "relu", rng=np.random.default_rng(0))
    net.dense_layers()[0].params["bias"][DEAD] = -100
    to_keras(net).save(tmp_path / "sick.keras")
    result = diagnose(tmp_path / "sick.keras", data_dir=data_dir, limit=2000)
    assert not result.history_used and result.images == 2000
    assert result.layers[0].dead_units == DEAD
