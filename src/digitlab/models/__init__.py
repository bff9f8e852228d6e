"""Model presets and the Keras networks behind them."""

from __future__ import annotations

from digitlab.errors import ConfigError
from digitlab.models.backend import select_backend
from digitlab.models.presets import DEFAULT_PRESET, PRESETS, Claim, Preset, config_for, get_preset


def build_model(name: str = DEFAULT_PRESET, image_shape=(28, 28), num_classes: int = 10):
    """Build the (uncompiled) Keras model of preset `name`, selecting its backend if still free."""
    preset = get_preset(name)
    if preset.kind != "keras":
        raise ConfigError(f"{name} is a scikit-learn model, not a network; train it with `digitlab train --model {name}`.")
    select_backend(preset.backend)
    return preset.build_fn()(image_shape, num_classes)


__all__ = ["DEFAULT_PRESET", "PRESETS", "Claim", "Preset", "build_model", "config_for", "get_preset"]
