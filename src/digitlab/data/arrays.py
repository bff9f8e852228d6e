"""Turn uint8 image arrays into what a network eats (scaled, shaped, one-hot, split), and score its
outputs (accuracy, cross-entropy) the same way for every engine. NumPy only."""

from __future__ import annotations

import numpy as np

from digitlab.errors import ConfigError

# Keras clips probabilities to [1e-7, 1 - 1e-7] in its cross-entropy; we do the same so the
# loss we report equals model.evaluate's.
EPSILON = 1e-7


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels) == np.asarray(predicted)))


def cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean categorical cross-entropy of integer labels under predicted probabilities."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(p)), np.asarray(labels)])))


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0-255 -> float32 in [0, 1], same shape."""
    return np.asarray(images, dtype=np.float32) / np.float32(255)


def flatten(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) -> (n, 784): the layout of the tutorials' dense networks."""
    images = np.asarray(images)
    return images.reshape(len(images), -1)


def shape_for(images: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Scale images and reshape them to a model's input shape, e.g. (784,) or (28, 28, 1)."""
    x = scale(images)
    if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
        raise ConfigError(f"images of shape {x.shape[1:]} do not fit a model input of shape {input_shape}.")
    return x.reshape((len(x), *input_shape))


def one_hot(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(n,) integer labels -> (n, num_classes) float32 one-hot rows."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ConfigError(f"labels must be in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}.")
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1
    return out


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A seeded random split into ((x_train, y_train), (x_val, y_val)) with `fraction` held out.

    Shuffles indices, not images; the same seed always holds out the same images.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}.")
    n_val = int(round(len(x) * fraction))
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (x[train], y[train]), (x[val], y[val])
