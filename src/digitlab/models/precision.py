"""The arithmetic a network trains and predicts in: float32 or mixed bfloat16, and how Keras' `fit`
is set to run.

Mixed bfloat16 is Keras' own dtype policy, set on the layers while training or predicting and
taken off after, so the model saved and exported computes in float32. On a CPU with bfloat16
instructions it makes the CNNs' steps faster at the same accuracy (BENCHMARKS.md). A network that trained in it predicts in it where that is fast (`prediction_precision`).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import replace

from digitlab.models.backend import bfloat16_is_fast, planned_backend
from digitlab.config import RunConfig, check_precision
from digitlab.errors import ConfigError
from digitlab.models import get_preset

# Keras' fit: training steps per compiled call, each call one Python round trip with its callbacks
# and metric updates: fewer calls, faster epochs (BENCHMARKS.md). PyTorch's backend accepts only 1.
STEPS_PER_EXECUTION = 32


def resolve_precision(config: RunConfig) -> RunConfig:
    """`config` with precision "auto" replaced by the one that trains it fastest here: mixed_bfloat16
    for a network Keras' fit trains on TensorFlow with oneDNN on a CPU with bfloat16 instructions,
    float32 elsewhere (digitlab's JAX loop computes in float32; bfloat16 made its CNN step slower:
    BENCHMARKS.md). Raises ConfigError for mixed_bfloat16 where there is no network to compute in it."""
    preset = get_preset(config.model)
    if config.precision == "float32":
        return config
    if preset.kind != "keras" or config.engine == "numpy":
        if config.precision == "auto":
            return replace(config, precision="float32")
        if preset.kind != "keras":
            raise ConfigError(f"{config.model} is a scikit-learn model; --precision mixed_bfloat16 "
                              "applies to Keras networks.")
        raise ConfigError("the NumPy engine computes in float32; --precision mixed_bfloat16 needs "
                          "--engine keras.")
    if config.precision == "auto":
        fast = planned_backend(preset.backend) == "tensorflow" and bfloat16_is_fast()
        return replace(config, precision="mixed_bfloat16" if fast else "float32")
    return config


@contextlib.contextmanager
def training_mode(model, precision: str):
    """While inside, `model` trains as fast as Keras' `fit` can here: every layer but the output layer
    computes in `precision` ("float32" or "mixed_bfloat16"), and `fit` runs STEPS_PER_EXECUTION steps
    per compiled call. On leaving, it is the model as anyone loads it: float32, one step per call.

    Keras' dtype policies: in mixed_bfloat16 a layer keeps its weights in float32 and computes in
    bfloat16. The output layer (its softmax and the loss) stays float32, as Keras' mixed-precision
    guide advises; bfloat16 has float32's range, so the loss needs no scaling.
    """
    import keras

    def settle(policy: str, steps: int) -> None:
        set_compute_precision(model, policy)
        model.steps_per_execution = steps

    settle(precision, 1 if keras.backend.backend() == "torch" else STEPS_PER_EXECUTION)
    try:
        yield model
    finally:
        settle("float32", 1)


def set_compute_precision(model, precision: str) -> None:
    """Every layer of a Keras model but its output layer computes in `precision` from now on."""
    for layer in model.layers[:-1]:
        if layer.dtype_policy.name != precision:
            layer.dtype_policy = precision
    _forget_compiled(model)


def _forget_compiled(model) -> None:
    # Keras keeps its compiled train, test and predict functions across calls whatever changed
    # since: drop them, or `evaluate` after training would still compute in bfloat16.
    model.train_function = model.test_function = model.predict_function = None


def prediction_precision(trained: str | None, backend: str | None, requested: str = "auto") -> str:
    """The arithmetic a Keras network predicts in: `requested`, or for "auto" the one it trained in
    (`trained`, from the run's config.json; None for a bare .keras file) where that is still fast:
    mixed bfloat16 on TensorFlow on a CPU with bfloat16 instructions (faster there: BENCHMARKS.md),
    float32 elsewhere.

    Validation during training ran in the training precision too, so a run's test accuracy, its
    temperature and `digitlab evaluate` all see the arithmetic the network learned in."""
    check_precision(requested)
    if requested != "auto":
        return requested
    fast = trained == "mixed_bfloat16" and backend == "tensorflow" and bfloat16_is_fast()
    return "mixed_bfloat16" if fast else "float32"


@contextlib.contextmanager
def computing_in(model, precision: str):
    """While inside, a Keras `model` predicts in `precision`, whatever policies it was loaded with;
    on leaving, its layers' policies are what they were. Anything else (a NumpyModel, a scikit-learn
    baseline) computes in float32 and passes through untouched."""
    keras = sys.modules.get("keras")  # not imported: `model` cannot be a Keras model
    if keras is None or not isinstance(model, keras.Model):
        yield model
        return
    before = [layer.dtype_policy.name for layer in model.layers[:-1]]
    if set(before) == {precision} or not before:
        yield model
        return
    set_compute_precision(model, precision)
    try:
        yield model
    finally:
        for layer, policy in zip(model.layers[:-1], before):
            layer.dtype_policy = policy
        _forget_compiled(model)


def warn_of_useless_precision(config: RunConfig, backend: str, model) -> None:
    """Warn where mixed bfloat16, chosen by hand, is probably slower than float32, or changes nothing."""
    if config.precision != "mixed_bfloat16":
        return
    if not (backend == "tensorflow" and bfloat16_is_fast()):
        where = {"jax": "Keras' fit on JAX, not digitlab's float32 loop",
                 "tensorflow": "a CPU without bfloat16 instructions"}.get(backend, f"Keras on {backend}")
        warnings.warn(f"mixed bfloat16 trains {config.model} with {where}, probably slower than float32; "
                      "--precision auto chooses what is fastest here.", stacklevel=3)
    if len(model.layers) < 2:
        warnings.warn(f"{config.model} has no layer but its output layer, which computes in float32: "
                      "nothing computes in bfloat16.", stacklevel=3)
