"""What `diagnose` and the NumPy engine told a learner wrongly, each found by the review of
2026-12-07: a network that never learned called healthy, NaN weights called dead units, a history
key naming no layer setting "the largest" norm, a CNN refused in the engine's words, the caller's
array changed by training, labels that wrap, gradcheck trusted in float32, a damaged optimiser state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digitlab.data.arrays import shape_for
from digitlab.errors import ConfigError, RunError
from digitlab.evaluation.diagnose import diagnose, diagnose_network
from digitlab.scratch import mlp
from digitlab.scratch.convert import to_keras


def images(mnist, n=500):
    (x, _), _ = mnist
    return shape_for(x[:n], (784,))


def test_a_network_whose_loss_stayed_at_chance_is_not_learning_and_no_layer_is_healthy(mnist):
    """A deep sigmoid network under SGD ended at 11.35% with every layer "healthy"."""
    net = mlp([784, 32, 32, 10], "sigmoid", rng=np.random.default_rng(0))
    history = {"loss": [2.31, 2.302], "grad_norm/dense_1": [0.01, 0.01], "grad_norm/dense_2": [0.01, 0.01],
               "grad_norm/dense_3": [0.02, 0.02]}
    result = diagnose_network(net, images(mnist), history)
    assert result.not_learning.startswith("the network has not learned: its training loss in the last epoch, 2.302")
    assert f"ln 10 = {math.log(10):.3f}" in result.not_learning
    assert [r.verdict for r in result.layers] == ["no fault of its own found"] * 2
    assert result.to_dict()["not_learning"] == result.not_learning
    learned = diagnose_network(net, images(mnist), {**history, "loss": [2.31, 0.4]})
    assert learned.not_learning is None and [r.verdict for r in learned.layers] == ["healthy"] * 2
    for odd in ([], [None], "2.3", [True]):  # a history.json anyone may have written
        assert diagnose_network(net, images(mnist), {**history, "loss": odd}).not_learning is None
    # far above chance's (lr 0.5 ended at 229), or no number at all: diverged, not "a uniform guess"
    for diverged in ([228.846], [float("nan")], [float("inf")], [10**400]):
        said = diagnose_network(net, images(mnist), {**history, "loss": diverged}).not_learning
        assert "is far above what a uniform guess scores" in said and "the training diverged" in said
    huge = {**history, "grad_norm/dense_1": [10**400]}  # an OverflowError traceback
    assert not diagnose_network(net, images(mnist), huge).history_used


def test_a_history_key_naming_no_layer_of_the_network_is_left_out(mnist):
    net = mlp([784, 32, 10], "relu", rng=np.random.default_rng(0))
    history = {"grad_norm/dense_1": [0.3], "grad_norm/dense_2": [0.4], "grad_norm/dense_99": [1e300]}
    (layer,) = diagnose_network(net, images(mnist), history).layers
    assert layer.grad_ratio == pytest.approx(0.75) and layer.verdict == "healthy"


def test_a_ratio_just_under_the_cut_is_not_printed_as_the_cut(mnist):
    net = mlp([784, 32, 10], "relu", rng=np.random.default_rng(0))
    (layer,) = diagnose_network(net, images(mnist), {"grad_norm/dense_1": [0.0197], "grad_norm/dense_2": [1.0]}).layers
    assert layer.verdict == "vanishing gradients (1.97% of the largest layer's norm)"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_weights_that_are_not_numbers_are_one_line_not_dead_units(tmp_path, data_dir, bad):
    net = mlp([784, 16, 10], "relu", rng=np.random.default_rng(0))
    net.dense_layers()[0].params["kernel"][0, 0] = bad
    to_keras(net).save(tmp_path / "nan.keras")
    with pytest.raises(RunError, match=r"the weights dense_1/kernel are not all finite numbers \(NaN or infinity\)"):
        diagnose(tmp_path / "nan.keras", data_dir=data_dir, limit=100)


def test_a_cnn_is_refused_as_not_a_dense_network(tmp_path, data_dir):
    from digitlab.models.networks import cnn_fast

    cnn_fast().save(tmp_path / "cnn.keras")
    with pytest.raises(RunError, match=r"diagnose looks inside dense networks .*a Conv2D layer"):
        diagnose(tmp_path / "cnn.keras", data_dir=data_dir, limit=100)


def test_training_with_an_activation_first_leaves_the_callers_array_alone():
    from digitlab.scratch.layers import Dense, ReLU
    from digitlab.scratch.network import Network
    from digitlab.scratch.optimizers import SGD

    net = Network([ReLU(), Dense(3, 2, rng=np.random.default_rng(0))])
    x = np.array([[-1.0, 2.0, -3.0]], np.float32)
    net.train_batch(x, np.array([1]), SGD())
    assert x.tolist() == [[-1.0, 2.0, -3.0]]  # it became [[0, 2, 0]]


@pytest.mark.parametrize("labels", [[-1, 0], [0, 10], [0.0, 1.0], [[0], [1]], [[1] + [0] * 9, [0, 1] + [0] * 8], [0]])
def test_labels_outside_the_classes_are_refused_not_wrapped(labels):
    """-1 wrapped to the last class; a column (n, 1) gave a wrong loss in silence; one-hot labels or
    too few a traceback (the attack review of 2026-12-07)."""
    from digitlab.scratch.optimizers import Adam

    net = mlp([4, 3, 10], "relu", rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"labels are (class numbers from 0 to 9|one class number per image, shape \(2,\))"):
        net.train_batch(np.ones((2, 4), np.float32), np.array(labels), Adam())


def test_gradcheck_refuses_a_float32_network_whose_rounding_it_would_report_as_errors():
    from digitlab.scratch.gradcheck import gradcheck

    x, labels = np.random.default_rng(0).normal(size=(4, 6)), np.array([0, 1, 2, 0])
    with pytest.raises(ConfigError, match="gradcheck needs a float64 network.*dtype=np.float64"):
        gradcheck(mlp([6, 5, 3], "sigmoid", rng=np.random.default_rng(0)), x, labels)
    errors = gradcheck(mlp([6, 5, 3], "sigmoid", rng=np.random.default_rng(0), dtype=np.float64), x, labels)
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("tamper", ["int", "nan", "negative_v", "text", "missing"])
def test_a_damaged_optimiser_state_in_a_checkpoint_is_one_line(tmp_path, tamper):
    """An int Adam moment gave a traceback from the update; a NaN or negative one was blamed on the
    learning rate as a diverged training."""
    from digitlab.scratch.optimizers import Adam
    from digitlab.training.checkpoints import load_numpy_state

    net = mlp([4, 3, 2], "relu", rng=np.random.default_rng(0))
    optimizer = Adam()
    net.train_batch(np.ones((2, 4), np.float32), np.array([0, 1]), optimizer)
    arrays = {f"param{i}": p for i, p in enumerate(net.parameters())}
    arrays |= {f"opt_m{i}": m for i, m in enumerate(optimizer._m)} | {f"opt_v{i}": v for i, v in enumerate(optimizer._v)}
    key = "opt_v0" if tamper == "negative_v" else "opt_m0"
    if tamper == "missing":  # every moment left out: it resumed with fresh ones, another result in silence
        arrays = {k: v for k, v in arrays.items() if not k.startswith("opt")}
    else:
        arrays[key] = {"int": arrays[key].astype(np.int64), "nan": arrays[key] * np.nan,
                       "negative_v": arrays[key] - 1, "text": arrays[key].astype(str)}[tamper]
    np.savez(tmp_path / "checkpoint.npz", **arrays)
    says = "holds no optimiser m arrays, which Adam keeps" if tamper == "missing" else (
        "optimiser's [mv] arrays are not all finite floating-point numbers")
    with pytest.raises(RunError, match=f"cannot load the checkpoint .*{says}"):
        load_numpy_state(tmp_path / "checkpoint.npz", mlp([4, 3, 2], "relu", rng=np.random.default_rng(1)), Adam())


def test_a_run_whose_data_set_now_has_other_classes_is_refused_as_evaluate_refuses_it(tmp_path, data_dir):
    """A digits run whose config.json was made to say fashion-mnist was diagnosed on clothes, in silence."""
    from digitlab.config import RunConfig
    from digitlab.runs import write_json

    run = tmp_path / "run"
    run.mkdir()
    to_keras(mlp([784, 16, 10], "relu", rng=np.random.default_rng(0))).save(run / "model.keras")
    write_json(run / "config.json", RunConfig(dataset="fashion-mnist").to_dict())
    write_json(run / "classes.json", {"classes": [str(d) for d in range(10)]})
    with pytest.raises(ConfigError, match="fashion-mnist's classes are now T-shirt/top.*trained on 0, 1"):
        diagnose(run, data_dir=data_dir, limit=100)
