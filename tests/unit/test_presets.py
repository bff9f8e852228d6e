"""Presets: the tutorials' networks with their exact parameter counts and recipes."""

from __future__ import annotations

import pytest

from digitlab.config import RunConfig
from digitlab.errors import ConfigError
from digitlab.models import PRESETS, build_model, config_for, get_preset
from digitlab.models.describe import describe_model

EXPECTED_PARAMETERS = {
    "softmax": 784 * 10 + 10,  # 7,850
    "mlp-dropout": (784 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10),  # 669,706
    "mlp-wide": 640_890,  # stated by its tutorial
    "mlp-small": 101_770,  # stated by its tutorial
    "mlp": 784 * 512 + 512 + 512 * 10 + 10,  # 407,050
    "mlp-deep-sigmoid": 784 * 128 + 128 + 3 * (128 * 128 + 128) + 128 * 10 + 10,  # 151,306
    # 'valid' padding: 28 -> 26 -> 13 -> 11 -> 5, so 5 * 5 * 64 features reach the classifier
    "cnn-simple": (9 * 32 + 32) + (9 * 32 * 64 + 64) + (5 * 5 * 64 * 10 + 10),  # 34,826
    "cnn": (9 * 32 + 32) + (9 * 32 * 64 + 64) + (7 * 7 * 64 * 128 + 128) + (128 * 10 + 10),
    "cnn-fast": (9 * 16 + 16) + (9 * 16 * 32 + 32) + (7 * 7 * 32 * 128 + 128) + (128 * 10 + 10),  # 206,922
    # conv 3x3 pairs with batch norm (4 numbers per channel), then 3136 -> 256 (+ batch norm) -> 10
    "cnn-aug": (9 * 32 + 32) + 4 * 32 + (9 * 32 * 32 + 32) + 4 * 32 + (9 * 32 * 64 + 64) + 4 * 64
    + (9 * 64 * 64 + 64) + 4 * 64 + (7 * 7 * 64 * 256 + 256) + 4 * 256 + (256 * 10 + 10),
}
EXPECTED_PARAMETERS["reader"] = EXPECTED_PARAMETERS["cnn"]  # the cnn (built here with 10 classes; trained with 11)

NETWORKS = [name for name, p in PRESETS.items() if p.kind == "keras"]


@pytest.mark.parametrize("name", NETWORKS)
def test_parameter_counts(name):
    assert build_model(name).count_params() == EXPECTED_PARAMETERS[name]


def test_every_network_is_tested():
    assert set(NETWORKS) == set(EXPECTED_PARAMETERS)


def test_a_classic_preset_is_not_built_as_a_network():
    with pytest.raises(ConfigError, match="random-forest is a scikit-learn model"):
        build_model("random-forest")


def test_layers_are_the_tutorials():
    assert [d for d, _, _ in describe_model(build_model("mlp-dropout"))] == [
        "Input", "Dense 512 relu", "Dropout 0.2", "Dense 512 relu", "Dropout 0.2", "Dense 10 softmax",
    ]
    assert [d for d, _, _ in describe_model(build_model("mlp-wide"))][1:] == [
        "Dense 784 relu", "Dense 32 relu", "Dense 10 softmax",
    ]
    assert [d for d, _, _ in describe_model(build_model("cnn-simple"))] == [
        "Input", "Conv2D 32 3x3 relu", "MaxPool 2x2", "Conv2D 64 3x3 relu", "MaxPool 2x2",
        "Flatten", "Dropout 0.5", "Dense 10 softmax",
    ]


def test_recipes():
    assert config_for("softmax") == RunConfig(model="softmax", optimizer="sgd", learning_rate=0.5, batch_size=128, epochs=10)
    assert config_for("mlp") == RunConfig()  # the default run is the default MLP recipe
    dropout = config_for("mlp-dropout")
    assert (dropout.optimizer, dropout.batch_size, dropout.epochs, dropout.validation) == ("rmsprop", 128, 4, "test")
    small = config_for("mlp-small")
    assert small.validation_split == 0.25  # 45,000 / 15,000 of the 60,000 training images
    assert (config_for("mlp-wide").batch_size, config_for("mlp-wide").epochs) == (500, 20)
    simple = config_for("cnn-simple")  # keras-io's example: Adam at Keras' default rate
    assert (simple.optimizer, simple.learning_rate, simple.batch_size, simple.epochs, simple.precision) == (
        "adam", None, 128, 15, "auto")


def test_overrides_replace_single_fields_and_none_keeps_the_recipe():
    c = config_for("mlp", epochs=1, learning_rate=None, seed=3)
    assert (c.epochs, c.learning_rate, c.seed, c.batch_size) == (1, None, 3, 64)


def test_unknown_names_are_rejected_with_the_choices():
    with pytest.raises(ConfigError, match='"cnn-fats" is not a preset. Choose one of: softmax'):
        get_preset("cnn-fats")
    with pytest.raises(ConfigError, match="unknown configuration field"):
        config_for("mlp", epoch=3)


def test_the_convolutional_presets_train_where_convolutions_are_fastest(monkeypatch):
    """TensorFlow's fit where TensorFlow runs oneDNN's kernels, digitlab's JAX loop elsewhere;
    the dense presets always on JAX, `cnn-aug` always on TensorFlow."""
    import digitlab.models.backend as backend

    monkeypatch.setattr(backend.platform, "system", lambda: "Linux")
    monkeypatch.setattr(backend.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    for flags, convnets in (({"avx2"}, "jax"), ({"avx2", "avx512f", "avx512_vnni"}, "tensorflow")):
        monkeypatch.setattr(backend, "cpu_flags", lambda: frozenset(flags))
        assert {n: get_preset(n).backend for n in ("mlp", "cnn", "cnn-fast", "cnn-simple", "cnn-aug")} == {
            "mlp": "jax", "cnn": convnets, "cnn-fast": convnets, "cnn-simple": convnets, "cnn-aug": "tensorflow"}
