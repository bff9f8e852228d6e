"""digitlab.training.fit with augmentation: both training paths train on each epoch's new copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from digitlab.models.backend import select_backend

select_backend("jax")

from digitlab.training import checkpoints
from digitlab.training import jaxloop
from digitlab.training import fit as training  # noqa: E402
from digitlab.config import RunConfig  # noqa: E402


@pytest.mark.parametrize("path", ["compiled loop", "keras fit"])
def test_training_with_augment_trains_on_each_epochs_distorted_copies(mnist, monkeypatch, path):
    """`fit` asks digitlab.data.augment for new copies every epoch, from the epoch's seed, and trains on
    them, not on the split's images: copies that are all black teach nothing."""
    (x, y), test = mnist
    calls = []

    def blank(images, distortion, seed):
        calls.append((images.shape, distortion.elastic_alpha, seed.entropy))
        return np.zeros_like(images)

    monkeypatch.setattr(training, "distort_images", blank)
    if path == "keras fit":  # the path of TensorFlow and PyTorch, and of models the loop cannot run
        monkeypatch.setattr(jaxloop, "supports", lambda model: False)
    config = RunConfig(model="mlp", epochs=2, augment="elastic", validation_split=0.2, seed=3)
    splits = training.make_splits(config, (x[:1000], y[:1000]), (test[0][:500], test[1][:500]))
    _, history = training.fit(config, splits, verbose=0)
    assert calls == [((800, 28, 28), 34.0, [checkpoints.epoch_seed(3, e), training.AUGMENT_STREAM]) for e in (0, 1)]
    assert max(history["accuracy"]) < 0.3  # black images: no better than guessing the commonest digit
    assert max(history["val_accuracy"]) < 0.3  # and nothing learnt that carries over to real digits


def test_the_epochs_copies_come_from_their_own_stream_of_the_epoch_seed(mnist):
    (x, y), test = mnist
    config = RunConfig(model="mlp", augment="affine")
    splits = training.make_splits(config, (x[:300], y[:300]), test)
    first = training.epoch_images(splits, training.distortion_for("affine"), 11)
    assert np.array_equal(first, training.epoch_images(splits, training.distortion_for("affine"), 11))
    assert not np.array_equal(first, training.epoch_images(splits, training.distortion_for("affine"), 12))
    plain_seed = training.distort_images(splits.x_train, training.distortion_for("affine"), 11)
    assert not np.array_equal(first, plain_seed)  # not the shuffling's own stream


def test_mixed_bfloat16_trains_resumes_and_returns_a_float32_model(mnist, tmp_path, monkeypatch):
    """Keras' fit (the loop computes in float32 only) in bfloat16; checkpoints resume; the model that
    comes back, and is saved, computes in float32 with float32 weights."""
    (x, y), test = mnist
    config = RunConfig(model="mlp", epochs=2, precision="mixed_bfloat16", validation_split=0.2)
    splits = training.make_splits(config, (x[:2000], y[:2000]), (test[0][:500], test[1][:500]))
    seen = []
    original = training._fit_keras

    def spy(model, *args):
        seen.append([layer.compute_dtype for layer in model.layers])
        return original(model, *args)

    monkeypatch.setattr(training, "_fit_keras", spy)
    slow = "mixed bfloat16 trains mlp with Keras' fit on JAX, not digitlab's float32 loop, probably slower"
    with pytest.warns(UserWarning, match=slow):  # said where it is chosen by hand where it is slow
        training.fit(dataclasses.replace(config, epochs=1), splits, run_dir=tmp_path, verbose=0)  # "interrupted"
    with pytest.warns(UserWarning, match=slow):
        model, history = training.fit(config, splits, run_dir=tmp_path, verbose=0, resume=True)
    assert seen == [["bfloat16", "float32"]] * 2  # both epochs in bfloat16, the softmax layer in float32
    assert len(history["accuracy"]) == 2 and history["val_accuracy"][-1] > 0.8
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert {v.dtype for v in model.weights} == {"float32"}
    assert jaxloop.supports(model) and model.steps_per_execution == 1
    # Keras' compiled functions from training (bfloat16) are gone: evaluate as a fresh float32 copy does
    import keras

    model.save(tmp_path / "m.keras")
    fresh = keras.saving.load_model(tmp_path / "m.keras")
    xs, ys = test[0][:500].reshape(-1, 784) / 255, keras.utils.to_categorical(test[1][:500], 10)
    # batch 64, as during training: a compiled function kept from then would be reused for these shapes
    ours, theirs = (m.evaluate(xs, ys, batch_size=64, verbose=0) for m in (model, fresh))
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_mixed_bfloat16_on_a_network_of_one_layer_says_it_changes_nothing(mnist):
    (x, y), test = mnist
    config = RunConfig(model="softmax", epochs=1, precision="mixed_bfloat16", validation_split=0)
    splits = training.make_splits(config, (x[:500], y[:500]), test)
    with pytest.warns(UserWarning, match="trains softmax with Keras' fit on JAX"), \
            pytest.warns(UserWarning, match="softmax has no layer but its output layer.*nothing computes in bfloat16"):
        training.fit(config, splits, verbose=0)


def test_the_epoch_driver_seeds_each_epoch_alone_and_checkpoints_after_each(tmp_path):
    """run_epochs, shared by Keras' fit, the compiled loop and the NumPy engine: epoch k gets
    epoch_seed(seed, k) whatever epoch the run started from, and each epoch's logs are appended
    and saved (history files and a checkpoint) before the next begins."""
    config = RunConfig(model="mlp", epochs=4, seed=7)
    seen, saved = [], []

    def train_one(epoch, seed):
        seen.append((epoch, seed))
        return {"loss": 1.0 / (epoch + 1), "accuracy": epoch / 10}

    def checkpoint(done, history):
        saved.append((done, len(history["loss"]), (tmp_path / "history.csv").is_file()))

    history = training.run_epochs(config, {"loss": [9.0], "accuracy": [0.0]}, 1, tmp_path, train_one, checkpoint)
    assert seen == [(e, checkpoints.epoch_seed(7, e)) for e in (1, 2, 3)]
    assert history == {"loss": [9.0, 0.5, 1 / 3, 0.25], "accuracy": [0.0, 0.1, 0.2, 0.3]}
    assert saved == [(2, 2, True), (3, 3, True), (4, 4, True)]
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == "epoch,loss,accuracy"
    assert training.run_epochs(config, {}, 0, None, lambda e, s: {"loss": e}, checkpoint) == {"loss": [0, 1, 2, 3]}
    assert len(saved) == 3  # no folder, no checkpoint
