"""Layers of the from-scratch engine: forward and backward written by hand, NumPy only.

Every layer works on a batch: x has shape (n, features). `forward(x, training)` keeps what the
backward pass needs; `backward(dy)` takes dLoss/dOutput and returns dLoss/dInput, storing the
parameter gradients in `grads` (same keys as `params`). Shapes follow Keras: a Dense kernel is
(inputs, units), so a trained Keras layer's weights drop straight in.
"""

from __future__ import annotations

import math

import numpy as np

from digitlab.errors import ConfigError

INITIALIZERS = ("glorot_uniform", "he_normal", "normal", "zeros")


def initialize(shape: tuple[int, int], kind: str, rng: np.random.Generator, std: float = 0.05,
               dtype=np.float32) -> np.ndarray:
    """A weight matrix drawn like Keras' initialisers of the same name.

    glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) -- Keras' default.
    he_normal: N(0, sqrt(2 / fan_in)) truncated at two standard deviations, as Keras does.
    normal: N(0, std), the "sloppy" initialisation of the tutorials' warnings.
    """
    fan_in, fan_out = shape
    if kind == "glorot_uniform":
        limit = math.sqrt(6 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, shape)
    elif kind == "he_normal":
        # Keras' HeNormal draws from a truncated normal whose stddev is sqrt(2/fan_in)/0.8796,
        # so that after truncation at 2 sd the spread is sqrt(2/fan_in).
        sd = math.sqrt(2 / fan_in) / 0.87962566103423978
        w = rng.normal(0, sd, shape)
        bad = np.abs(w) > 2 * sd
        while bad.any():
            w[bad] = rng.normal(0, sd, int(bad.sum()))
            bad = np.abs(w) > 2 * sd
    elif kind == "normal":
        w = rng.normal(0, std, shape)
    elif kind == "zeros":
        w = np.zeros(shape)
    else:
        raise ConfigError(f'initializer "{kind}" is not one of {", ".join(INITIALIZERS)}.')
    return w.astype(dtype)


class Dense:
    """y = x W + b."""

    def __init__(self, n_in: int, n_out: int, *, init: str = "glorot_uniform", std: float = 0.05,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng()
        self.params = {"kernel": initialize((n_in, n_out), init, rng, std, dtype),
                       "bias": np.zeros(n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.name = "dense"  # the network numbers it: dense_1, dense_2, ...
        self._x: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.params["kernel"].shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        kernel = self.params["kernel"]
        if x.ndim != 2 or x.shape[1] != kernel.shape[0]:
            raise ConfigError(
                f"{self.name}: input of shape {x.shape} does not fit a kernel of shape {kernel.shape} "
                f"(expected (batch, {kernel.shape[0]}))."
            )
        self._x = x
        out = x @ kernel
        out += self.params["bias"]
        return out

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        # dW = x^T dy (the sum over the batch of outer(x_i, dy_i)); db = sum of dy; dx = dy W^T.
        # The first layer's dx is never used in training: skipping it saves a third of its work.
        np.matmul(self._x.T, dy, out=self.grads["kernel"])
        np.sum(dy, axis=0, out=self.grads["bias"])
        return dy @ self.params["kernel"].T if input_grad else None


class ReLU:
    """max(0, z); the local gradient is 1 where z > 0, else 0."""

    params: dict = {}
    grads: dict = {}

    def __init__(self):
        self.name = "relu"  # the network numbers it: relu_1, relu_2, ...
        self._active: np.ndarray | None = None

    def forward(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        self._active = z > 0
        return np.maximum(z, 0, out=z) if training else np.maximum(z, 0)  # in training z is ours to reuse

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self._active


class Sigmoid:
    """1 / (1 + e^-z); the local gradient is s(1 - s)."""

    params: dict = {}
    grads: dict = {}

    def __init__(self):
        self.name = "sigmoid"  # the network numbers it: sigmoid_1, sigmoid_2, ...
        self._out: np.ndarray | None = None

    def forward(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        # Split by sign so that exp never overflows.
        e = np.exp(-np.abs(z))
        self._out = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
        return self._out

    def backward(self, dy: np.ndarray) -> np.ndarray:
        s = self._out
        return dy * s * (1 - s)


class Tanh:
    """tanh(z); the local gradient is 1 - tanh(z)^2."""

    params: dict = {}
    grads: dict = {}

    def __init__(self):
        self.name = "tanh"  # the network numbers it: tanh_1, tanh_2, ...
        self._out: np.ndarray | None = None

    def forward(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        self._out = np.tanh(z)
        return self._out

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - self._out**2)


class Dropout:
    """Inverted dropout, as Keras: in training, zero a share `rate` of units and scale the rest."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, rate: float, rng: np.random.Generator | None = None):
        if not 0 <= rate < 1:
            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}.")
        self.rate = rate
        self.rng = rng if rng is not None else np.random.default_rng()
        self.name = "dropout"  # the network numbers it: dropout_1, dropout_2, ...
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep.astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self._mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self._mask is None else dy * self._mask


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so that exp never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    """Softmax and mean categorical cross-entropy fused: the gradient is (p - onehot) / n.

    Computed with log-sum-exp, so logits of +-1000 give a finite loss and gradient.
    """

    def __init__(self):
        self.probs: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        norm = e.sum(axis=1, keepdims=True)
        n = len(labels)
        labels = np.asarray(labels)
        if labels.shape != (len(logits),):  # a column (n, 1) gave a wrong loss in silence, one-hot a traceback
            raise ConfigError(f"labels are one class number per image, shape ({len(logits)},), not {labels.shape}.")
        if n and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= logits.shape[1]):
            # NumPy's indexing would take -1 for the last class, silently
            raise ConfigError(f"labels are class numbers from 0 to {logits.shape[1] - 1}, not "
                             f"{labels.dtype} from {labels.min()} to {labels.max()}.")
        self.probs = e / norm
        self._labels = labels
        # log-sum-exp: the largest shifted logit is 0, so norm >= 1 and its log is finite
        return float(np.mean(np.log(norm[:, 0]) - shifted[np.arange(n), labels]))

    def backward(self) -> np.ndarray:
        n = len(self._labels)
        grad = self.probs.copy()
        grad[np.arange(n), self._labels] -= 1
        grad /= n
        return grad
