"""RunConfig validation and its JSON round trip."""

import json

import pytest

from digitlab.config import RunConfig
from digitlab.errors import ConfigError


def test_round_trip(tmp_path):
    c = RunConfig(model="cnn", epochs=3, learning_rate=0.01, seed=7)
    c.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == c
    assert json.loads((tmp_path / "config.json").read_text())["model"] == "cnn"


@pytest.mark.parametrize(
    "field, value, phrase",
    [
        ("epochs", 0, "epochs must be at least 1"),
        ("batch_size", -5, "batch_size must be at least 1"),
        ("optimizer", "adamm", 'optimizer "adamm" is not one of'),
        ("learning_rate", 0.0, "learning_rate must be a positive number"),
        ("learning_rate", float("nan"), "learning_rate must be a positive number"),
        ("init_std", float("inf"), "init_std must be a positive number"),
        ("learning_rate", 10**400, "learning_rate must be a positive number, got inf"),  # an OverflowError in training
        ("validation_split", 1.0, "validation_split must be in"),
        ("second_look_below", 1.5, "second_look_below must be in"),
        ("second_look_below", -0.1, "second_look_below must be in"),
        ("validation", "train", 'validation "train" is not one of'),
        ("train_limit", 0, "train_limit must be at least 1"),
        ("augment", "wobbly", 'augment "wobbly" is not one of none, affine, elastic'),
        ("precision", "float16", 'precision "float16" is not one of auto, float32, mixed_bfloat16'),
    ],
)
def test_invalid_values(field, value, phrase):
    with pytest.raises(ConfigError, match=phrase):
        RunConfig(**{field: value})


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown configuration field.*nb_epoch"):
        RunConfig.from_dict({"model": "mlp", "nb_epoch": 3})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the run configuration"):
        RunConfig.load(tmp_path / "bad.json")


def test_the_one_line_summary_names_augmentation_and_precision():
    assert RunConfig().extras_note() == ""
    assert RunConfig(augment="affine").extras_note() == ", affine augmentation"
    assert RunConfig(augment="affine", precision="mixed_bfloat16").extras_note() == ", affine augmentation, mixed bfloat16"
    assert RunConfig(precision="auto").extras_note() == ", precision auto"
    # the training line said "adam" for cnn's Adam with cosine decay (the README walkthrough of 2026-12-07)
    assert RunConfig(lr_schedule="cosine", augment="affine").extras_note() == ", cosine decay, affine augmentation"


@pytest.mark.parametrize("data, phrase", [
    ({"dataset": 5}, "dataset must be a string, not 5"),
    ({"epochs": "x"}, "epochs must be a whole number, not 'x'"),
    ({"epochs": True}, "epochs must be a whole number, not True"),
    ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ({"train_limit": 1.5}, "train_limit must be a whole number"),
    ([1], "a JSON object of fields, not list"),
    ({}, None),
    ({"learning_rate": None, "train_limit": None, "validation_split": 0}, None),
])
def test_a_tampered_config_json_gets_one_line_naming_the_file_and_field(tmp_path, data, phrase):
    """Issue 22: `dataset: 5` or `epochs: "x"` in a run's config.json gave a traceback or a wrong run."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    if phrase is None:
        assert isinstance(RunConfig.load(path), RunConfig)
        return
    with pytest.raises(ConfigError, match=f"^{path}: .*{phrase}"):
        RunConfig.load(path)


@pytest.mark.parametrize("field, value", [("epochs", True), ("epochs", 1.5), ("batch_size", 32.0), ("dataset", 5),
                                          ("out", 5), ("learning_rate", "0.1"), ("seed", 2.0)])
def test_a_config_built_in_python_has_its_types_checked_as_config_json_has(field, value):
    """`config_for("mlp", epochs=True)` trained to "complete" and wrote a config.json that digitlab
    then refused to read; `epochs=1.5` failed inside Keras with a TypeError (third review)."""
    from digitlab.models import config_for

    with pytest.raises(ConfigError, match=f"{field} must be a"):
        config_for("mlp", **{field: value})


def test_numpy_numbers_and_paths_are_taken_as_the_values_they_stand_for():
    from pathlib import Path

    import numpy as np

    config = RunConfig(epochs=np.int64(3), learning_rate=np.float32(0.5), dataset=Path("digits"))
    assert (config.epochs, config.learning_rate, config.dataset) == (3, 0.5, "digits")
    assert type(config.epochs) is int and type(config.learning_rate) is float
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
