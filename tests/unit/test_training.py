"""digitlab.training with augmentation: both training paths train on each epoch's new copies."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.backend import select_backend

select_backend("jax")

from digitlab import checkpoints, jaxloop, training  # noqa: E402
from digitlab.config import RunConfig  # noqa: E402


@pytest.mark.parametrize("path", ["compiled loop", "keras fit"])
def test_training_with_augment_trains_on_each_epochs_distorted_copies(mnist, monkeypatch, path):
    """`fit` asks digitlab.augment for new copies every epoch, from the epoch's seed, and trains on
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
