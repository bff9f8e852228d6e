"""digitlab.precision: which arithmetic a run trains in, resolved before it starts."""

from __future__ import annotations

import pytest

from digitlab import precision
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
