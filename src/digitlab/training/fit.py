"""Fit a preset's Keras network to a data set with its recipe: seeded, validated, with progress.

Keras is imported inside the functions, after `select_backend`, so each preset runs on the
backend measured fastest for it (see digitlab.models.backend).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from digitlab.config import OPTIMIZERS, RunConfig
from digitlab.data.arrays import accuracy, cross_entropy, one_hot, shape_for, split_validation
from digitlab.data.augment import distort_images, distortion_for
from digitlab.errors import ConfigError, RunError
from digitlab.models import build_model, get_preset
from digitlab.models.backend import select_backend
from digitlab.models.classic import fit_classic as fit_estimator
from digitlab.models.precision import resolve_precision, training_mode, warn_of_useless_precision
from digitlab.runs import write_history
from digitlab.scratch import Dropout
from digitlab.scratch import make_optimizer as make_numpy_optimizer
from digitlab.scratch.convert import from_keras, to_keras
from digitlab.scratch.layers import initialize
from digitlab.scratch.train import evaluate as evaluate_numpy
from digitlab.scratch.train import kernels, layer_health, train_epoch
from digitlab.training import checkpoints, jaxloop

AUGMENT_STREAM = 1  # the distortions' random stream of an epoch's seed (the shuffling has the seed itself)


@dataclass
class Splits:
    """The arrays a run trains, validates and tests on (uint8 images, integer labels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray



def _checkpoint_model(path, preset: str, num_classes: int):
    """The Keras model a checkpoint holds, checked to be the run's preset: a run folder may come
    from anyone, and a config.json changed to another preset would else describe the model falsely."""
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001 -- Keras raises ValueError, OSError, zip errors... for a bad file
        raise RunError(f"{path}: cannot load the checkpoint ({type(e).__name__}: {str(e)[:160]}); digitlab did "
                       "not write it so: start the run again.") from None
    builder, outputs = get_preset(preset).builder, model.output_shape[-1] if model.outputs else None
    if model.name != builder or outputs != num_classes:
        raise RunError(f"{path}: the checkpoint holds a {model.name} network of {outputs} outputs, not the {preset} "
                       f"of {num_classes} classes that config.json names; the run folder was changed: start the run again.")
    return model

def make_splits(config: RunConfig, train: tuple, test: tuple) -> Splits:
    """Apply the config's validation choice to the loaded data set."""
    (x_train, y_train), (x_test, y_test) = train, test
    if config.train_limit is not None:
        x_train, y_train = x_train[: config.train_limit], y_train[: config.train_limit]
    if config.validation == "test":
        return Splits(x_train, y_train, x_test, y_test, x_test, y_test)
    if config.validation_split == 0:
        return Splits(x_train, y_train, None, None, x_test, y_test)
    (xt, yt), (xv, yv) = split_validation(x_train, y_train, config.validation_split, config.seed)
    if len(xt) == 0 or len(xv) == 0:
        raise ConfigError(
            f"a validation split of {config.validation_split:g} of {len(x_train)} training images leaves "
            f"{len(xt)} to train on and {len(xv)} to validate on; use more images or another split."
        )
    return Splits(xt, yt, xv, yv, x_test, y_test)


def make_optimizer(config: RunConfig, steps_per_epoch: int):
    """The configured Keras optimizer, its learning rate constant or decaying over the run."""
    import keras

    cls = getattr(keras.optimizers, OPTIMIZERS[config.optimizer])
    if config.lr_schedule == "constant":
        return cls() if config.learning_rate is None else cls(learning_rate=config.learning_rate)
    base = config.learning_rate or float(keras.ops.convert_to_numpy(cls().learning_rate))
    decay = keras.optimizers.schedules.CosineDecay(base, decay_steps=steps_per_epoch * config.epochs)
    return cls(learning_rate=decay)


def compile_for_fit(model, config: RunConfig, n_train: int) -> None:
    """Compile `model` with the config's optimizer and loss for Keras' own `fit`.

    One step per call here: Keras saves the compile settings with the model, and a model saved with
    more refuses to predict on PyTorch's backend; `precision.training_mode` sets more while training.
    """
    model.compile(
        optimizer=make_optimizer(config, -(-n_train // config.batch_size)),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )


def fit(
    config: RunConfig,
    splits: Splits,
    *,
    num_classes: int = 10,
    run_dir: Path | None = None,
    verbose: int | None = None,
    resume: bool = False,
):
    """Build, compile and train the preset's model. Returns (model, history dict).

    With `run_dir`, the history and a checkpoint are written there after every epoch; with
    `resume`, training continues from that checkpoint.
    """
    preset = get_preset(config.model)
    backend = select_backend(preset.backend)
    if backend != preset.backend and not os.environ.get("KERAS_BACKEND"):
        warnings.warn(
            f"{config.model} trains fastest on the {preset.backend} backend, but this process already "
            f"runs Keras on {backend} (a process holds one backend). Train it in a new process, "
            f"e.g. with `digitlab train --model {config.model}`, for full speed.",
            stacklevel=2,
        )
    config = resolve_precision(config)  # "auto" (a RunConfig made in Python) as `digitlab train` resolves it
    import keras

    if resume:
        checkpoint = checkpoints.load(run_dir, config.epochs)
        model = _checkpoint_model(checkpoint.state_file, config.model, num_classes)
        history, start = checkpoint.history, checkpoint.epoch
    else:
        keras.utils.set_random_seed(config.seed)
        model = build_model(config.model, splits.x_train.shape[1:], num_classes)
        initialize_dense(model, config)
        compile_for_fit(model, config, len(splits.x_train))
        history, start = {}, 0
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2  # a progress bar on a terminal, a line per epoch in logs
    warn_of_useless_precision(config, backend, model)
    with training_mode(model, config.precision):  # then float32 for saving, evaluation and export
        fit_epochs = _fit_compiled if jaxloop.supports(model) else _fit_keras  # the loop: float32 only
        history = fit_epochs(model, config, splits, history, start, num_classes, run_dir, verbose)
    return model, history


def run_epochs(config: RunConfig, history: dict, start: int, run_dir: Path | None,
               train_one: Callable[[int, int], dict], checkpoint: Callable[[int, dict], None]) -> dict:
    """The epoch driver every engine shares: epochs `start`.. of the run, each from its own seed.

    `train_one(epoch, seed)` trains one epoch (0-based) and returns its logs (name -> number);
    they are appended to `history`, and with `run_dir` the history and a checkpoint
    (`checkpoint(epochs_done, history)`) are written after every epoch. Each epoch's randomness
    (shuffling, dropout, distortions) comes from `checkpoints.epoch_seed` alone, so a run resumed
    from a checkpoint continues exactly as it would have.
    """
    for epoch in range(start, config.epochs):
        logs = train_one(epoch, checkpoints.epoch_seed(config.seed, epoch))
        for k, v in logs.items():
            history.setdefault(k, []).append(float(v))
        if run_dir is not None:
            write_history(run_dir, history)
            checkpoint(epoch + 1, history)
    return history


def seed_keras_epoch(model, seed: int, n: int) -> np.ndarray:
    """Seed Keras and the model's random layers with the epoch's seed; the epoch's shuffling order.

    We shuffle, not Keras: its shuffling draws from TensorFlow's op-level seeds where TensorFlow
    is installed, which depend on the process's history, not just the seed.
    """
    import keras

    keras.utils.set_random_seed(seed)
    _reseed_layers(model, seed)
    return np.random.default_rng(seed).permutation(n)


def _save_keras_checkpoint(model, run_dir: Path | None) -> Callable[[int, dict], None]:
    return lambda epochs_done, history: checkpoints.save(run_dir, epochs_done, history, model.save, ".keras")


def _fit_keras(model, config: RunConfig, splits: Splits, history: dict, start: int, num_classes: int,
               run_dir: Path | None, verbose: int) -> dict:
    """Epochs `start`.. of `fit` with Keras' own `model.fit`, one call per epoch."""
    input_shape = tuple(model.input_shape[1:])
    distortion = distortion_for(config.augment)
    x = shape_for(splits.x_train, input_shape) if distortion is None else None  # else new copies each epoch
    y = one_hot(splits.y_train, num_classes)
    validation = None
    if splits.x_val is not None:
        validation = (shape_for(splits.x_val, input_shape), one_hot(splits.y_val, num_classes))

    def train_one(epoch: int, seed: int) -> dict:
        order = seed_keras_epoch(model, seed, len(y))
        before = health_before(model)
        images = x if distortion is None else shape_for(epoch_images(splits, distortion, seed), input_shape)
        # One fit call per epoch, its randomness seeded by the epoch alone
        result = model.fit(images[order], y[order], batch_size=config.batch_size, epochs=config.epochs,
                           initial_epoch=epoch, validation_data=validation, shuffle=False,
                           callbacks=[one_epoch()], verbose=verbose)
        return {**{k: v[-1] for k, v in result.history.items()}, **health_after(model, splits, before)}

    return run_epochs(config, history, start, run_dir, train_one, _save_keras_checkpoint(model, run_dir))


def _fit_compiled(model, config: RunConfig, splits: Splits, history: dict, start: int, num_classes: int,
                  run_dir: Path | None, verbose: int) -> dict:
    """Epochs `start`.. of `fit` with digitlab's compiled JAX loop (digitlab.training.jaxloop): same
    recipe, same seeds per epoch, same history and checkpoints, several times faster than `model.fit`
    on a CPU."""
    input_shape = tuple(model.input_shape[1:])
    x = splits.x_train.reshape(len(splits.x_train), *input_shape)  # uint8: scaled inside each step
    loop = jaxloop.build_loop(model, x, splits.y_train, num_classes)
    steps = -(-len(x) // config.batch_size)
    x_val = None if splits.x_val is None else splits.x_val.reshape(len(splits.x_val), *input_shape)
    distortion = distortion_for(config.augment)

    def train_one(epoch: int, seed: int) -> dict:
        order = seed_keras_epoch(model, seed, len(x))
        before = health_before(model)
        images = None if distortion is None else epoch_images(splits, distortion, seed).reshape(x.shape)
        if verbose:
            print(f"Epoch {epoch + 1}/{config.epochs}", flush=True)
        bar = jaxloop.progress_bar(steps, verbose) if verbose else None
        logs = jaxloop.train_epoch(loop, model, order, config.batch_size, epoch=epoch + 1, progress=bar,
                                   images=images)
        if x_val is not None:
            logs["val_loss"], logs["val_accuracy"] = jaxloop.evaluate(loop, model, x_val, splits.y_val)
            logs = {k: logs[k] for k in ("accuracy", "loss", "val_accuracy", "val_loss")}  # fit's order
        if bar is not None:
            bar(steps, logs, finalize=True)
        return {**logs, **health_after(model, splits, before)}

    return run_epochs(config, history, start, run_dir, train_one, _save_keras_checkpoint(model, run_dir))


def epoch_images(splits: Splits, distortion, epoch_seed: int) -> np.ndarray:
    """An epoch's distorted copies of the training images (digitlab.data.augment), uint8 (n, height, width).

    Drawn from the epoch's seed alone, so a resumed run trains on the same copies, but from their
    own stream of it: the shuffling, drawn from the same seed, stays independent of them.
    """
    return distort_images(splits.x_train, distortion, np.random.SeedSequence([epoch_seed, AUGMENT_STREAM]))


def _reseed_layers(model, seed: int) -> None:
    """Set the random state of every layer that draws numbers (Dropout) from `seed`.

    Such layers keep their own seed generator, which the global seed does not reset and a
    reloaded model does not restore; without this a resumed run would drop other units.
    """
    import keras

    for i, layer in enumerate(model.layers):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                value.state.assign(np.array([(seed + 7919 * (i + 1)) % 2**31, 0], dtype=value.state.dtype))


def one_epoch():
    """A Keras callback that ends fit after the epoch it started (fit shows "Epoch k/N" right)."""
    import keras

    class OneEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    return OneEpoch()


def initialize_dense(model, config: RunConfig) -> None:
    """Re-draw every Dense kernel with the config's initialiser (Keras' own Glorot is kept)."""
    if config.init == "glorot_uniform":
        return
    rng = np.random.default_rng(config.seed)
    for layer in model.layers:
        if type(layer).__name__ == "Dense":
            kernel, bias = layer.get_weights()
            layer.set_weights([initialize(kernel.shape, config.init, rng, config.init_std), np.zeros_like(bias)])


PROBE_IMAGES = 1000  # training images on which per-layer gradient norms are measured each epoch


def check_numpy_engine(config: RunConfig, image_shape, num_classes: int) -> None:
    """Raise ConfigError if the NumPy engine cannot run this configuration (layer, optimizer...)."""
    if config.augment != "none":
        raise ConfigError(f'the NumPy engine trains on the images as they are, without "{config.augment}" '
                          "augmentation; train with --engine keras to distort them.")
    from_keras(build_model(config.model, image_shape, num_classes))
    if config.lr_schedule != "constant":
        raise ConfigError(f'the NumPy engine has a constant learning rate only, not "{config.lr_schedule}".')
    make_numpy_optimizer(config.optimizer, config.learning_rate)


def fit_classic(config: RunConfig, splits: Splits, *, num_classes: int = 10, run_dir: Path | None = None,
                verbose: int | None = None, resume: bool = False):
    """Fit a scikit-learn baseline. Returns (ClassicModel, history of the validation scores).

    It fits in one step, so there are no epochs to checkpoint: an interrupted fit starts again.
    """
    if resume:
        raise RunError(f"{config.model} fits in one step and has no checkpoint; train it again.")
    model = fit_estimator(get_preset(config.model).build_fn(), splits.x_train, splits.y_train, config.seed)
    history: dict[str, list[float]] = {}
    if splits.x_val is not None:
        p = model.predict(shape_for(splits.x_val, model.input_shape[1:]))
        history = {"val_accuracy": [accuracy(splits.y_val, p.argmax(axis=1))],
                   "val_loss": [cross_entropy(splits.y_val, p)]}
    return model, history


def fit_numpy(config: RunConfig, splits: Splits, *, num_classes: int = 10, run_dir: Path | None = None,
              verbose: int | None = None, resume: bool = False):
    """Train the preset with the from-scratch NumPy engine. Returns (Keras model, history).

    The network starts from the same Glorot-initialised weights Keras would draw for this seed,
    and the result is exported as a Keras model, so the run folder is the same as a Keras run's.
    """
    check_numpy_engine(config, splits.x_train.shape[1:], num_classes)
    select_backend(get_preset(config.model).backend)
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, splits.x_train.shape[1:], num_classes)
    initialize_dense(model, config)
    net = from_keras(model)
    optimizer = make_numpy_optimizer(config.optimizer, config.learning_rate)
    x = shape_for(splits.x_train, (net.dense_layers()[0].shape[0],))
    y = splits.y_train.astype(np.int64)
    val = None
    if splits.x_val is not None:
        val = (shape_for(splits.x_val, x.shape[1:]), splits.y_val.astype(np.int64))
    probe = (x[:PROBE_IMAGES], y[:PROBE_IMAGES])
    history: dict[str, list[float]] = {}
    start = 0
    if resume:
        checkpoint = checkpoints.load(run_dir, config.epochs)
        checkpoints.load_numpy_state(checkpoint.state_file, net, optimizer)
        optimizer.iterations = int(checkpoint.extra["iterations"])
        history, start = checkpoint.history, checkpoint.epoch

    def train_one(epoch: int, seed: int) -> dict:
        started = time.perf_counter()
        before = kernels(net)
        rng = np.random.default_rng(seed)  # the epoch's shuffling and dropout
        for layer in net.layers:
            if isinstance(layer, Dropout):
                layer.rng = rng
        loss, accuracy = train_epoch(net, optimizer, x, y, config.batch_size, rng, epoch + 1)
        logs = {"accuracy": accuracy, "loss": loss}
        if val is not None:
            logs["val_loss"], logs["val_accuracy"] = evaluate_numpy(net, *val)
        logs.update(layer_health(net, *probe, before))
        if verbose != 0:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if "/" not in k)
            print(f"Epoch {epoch + 1}/{config.epochs} - {time.perf_counter() - started:.1f}s - {shown}", flush=True)
        return logs

    def checkpoint(epochs_done: int, history: dict) -> None:
        checkpoints.save(run_dir, epochs_done, history, lambda path: checkpoints.save_numpy_state(path, net, optimizer),
                         ".npz", {"iterations": optimizer.iterations})

    run_epochs(config, history, start, run_dir, train_one, checkpoint)
    return to_keras(net, name=f"{config.model}_numpy"), history


def health_before(model) -> list[np.ndarray] | None:
    """The Dense kernels before an epoch, for `health_after`; None for a network the NumPy engine
    cannot run (convolutions), which then gets no health entries."""
    try:
        return kernels(from_keras(model))
    except ConfigError:
        return None


def health_after(model, splits: Splits, before: list[np.ndarray] | None) -> dict[str, float]:
    """Per-layer gradient norms and update ratios after an epoch, measured with the NumPy engine
    on a copy of the weights (so on every backend) on the first PROBE_IMAGES training images."""
    if before is None:
        return {}
    net = from_keras(model)
    x = shape_for(splits.x_train[:PROBE_IMAGES], (net.dense_layers()[0].shape[0],))
    y = splits.y_train[:PROBE_IMAGES].astype(np.int64)
    return layer_health(net, x, y, before)
