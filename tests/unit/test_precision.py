"""digitlab.models.precision: which arithmetic a run trains in, resolved before it starts."""

from __future__ import annotations

import pytest

from digitlab.models import precision
from digitlab.config import RunConfig
from digitlab.errors import ConfigError


def test_auto_precision_is_mixed_bfloat16_only_where_tensorflow_computes_it_fast(monkeypatch):
    fast = {"value": True}
    monkeypatch.setattr(precision, "bfloat16_is_fast", lambda: fast["value"])
    monkeypatch.setattr(precision, "planned_backend", lambda preferred: "tensorflow")
    auto = RunConfig(model="cnn", precision="auto")
    assert precision.resolve_precision(auto).precision == "mixed_bfloat16"
    fast["value"] = False  # no bfloat16 instructions, or no oneDNN
    assert precision.resolve_precision(auto).precision == "float32"
    fast["value"] = True
    monkeypatch.setattr(precision, "planned_backend", lambda preferred: "jax")  # the compiled loop: float32
    assert precision.resolve_precision(auto).precision == "float32"
    # an explicit choice is kept; float32 stays float32
    mixed = RunConfig(model="cnn", precision="mixed_bfloat16")
    assert precision.resolve_precision(mixed) == mixed
    assert precision.resolve_precision(RunConfig(model="cnn")) == RunConfig(model="cnn")


def test_precision_where_there_is_no_keras_network():
    assert precision.resolve_precision(RunConfig(model="knn", precision="auto")).precision == "float32"
    assert precision.resolve_precision(RunConfig(model="mlp", engine="numpy", precision="auto")).precision == "float32"
    with pytest.raises(ConfigError, match="knn is a scikit-learn model; --precision mixed_bfloat16"):
        precision.resolve_precision(RunConfig(model="knn", precision="mixed_bfloat16"))
    with pytest.raises(ConfigError, match="NumPy engine computes in float32; --precision mixed_bfloat16 needs --engine keras"):
        precision.resolve_precision(RunConfig(model="mlp", engine="numpy", precision="mixed_bfloat16"))


def test_a_network_predicts_in_the_precision_it_trained_in_where_that_is_fast(monkeypatch):
    fast = {"value": True}
    monkeypatch.setattr(precision, "bfloat16_is_fast", lambda: fast["value"])
    assert precision.prediction_precision("mixed_bfloat16", "tensorflow") == "mixed_bfloat16"
    assert precision.prediction_precision("mixed_bfloat16", "jax") == "float32"  # XLA: slower in bfloat16
    assert precision.prediction_precision("float32", "tensorflow") == "float32"
    assert precision.prediction_precision(None, "tensorflow") == "float32"  # a bare .keras file: no record
    fast["value"] = False  # a run trained on another machine, evaluated here
    assert precision.prediction_precision("mixed_bfloat16", "tensorflow") == "float32"
    # asked for by name: kept
    assert precision.prediction_precision("float32", "jax", "mixed_bfloat16") == "mixed_bfloat16"
    assert precision.prediction_precision("mixed_bfloat16", "tensorflow", "float32") == "float32"
    with pytest.raises(ConfigError, match='precision "float16" is not one of auto, float32, mixed_bfloat16'):
        precision.prediction_precision("float32", "jax", "float16")


def test_computing_in_sets_every_layer_but_the_output_layer_and_restores_float32(mnist):
    import numpy as np

    from digitlab.models.numpy_model import predict_batches
    from digitlab.models import build_model
    from digitlab.data.arrays import shape_for

    model = build_model("mlp-dropout")
    x = shape_for(mnist[1][0][:300], (784,))
    before = predict_batches(model, x, 128)
    with precision.computing_in(model, "mixed_bfloat16") as inside:
        assert [layer.compute_dtype for layer in inside.layers] == ["bfloat16"] * (len(model.layers) - 1) + ["float32"]
        during = predict_batches(model, x, 128)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    after = predict_batches(model, x, 128)
    np.testing.assert_array_equal(after, before)  # Keras' compiled predict was dropped, not reused
    assert not np.array_equal(during, before)  # it did compute in bfloat16 ...
    np.testing.assert_allclose(during, before, atol=0.02)  # ... to within bfloat16's 8 bits
    # a model whose layers came in bfloat16 (a checkpoint saved while training) computes in what
    # was asked, and gets its own policies back after
    precision.set_compute_precision(model, "mixed_bfloat16")
    with precision.computing_in(model, "float32"):
        np.testing.assert_array_equal(predict_batches(model, x, 128), before)
    assert model.layers[0].dtype_policy.name == "mixed_bfloat16" and model.layers[-1].dtype_policy.name == "float32"
    for anything in (object(), None):  # not a Keras model: passes through
        with precision.computing_in(anything, "mixed_bfloat16") as same:
            assert same is anything
