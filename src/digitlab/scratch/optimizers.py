"""Optimisers with Keras 3's update rules and defaults, written out in NumPy.

Each `step(params, grads)` updates the parameter arrays in place. State (momentum, velocity) is
kept per parameter, in the order the parameters are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digitlab.errors import ConfigError


# Moments of units whose gradient is 0 (dead ReLUs) decay geometrically into subnormal floats,
# which CPUs process up to 100x slower: an epoch with many dead units took three times as long.
# TensorFlow and XLA flush them to zero in hardware (FTZ); NumPy cannot, so we do it every
# FLUSH_EVERY steps. Values below float32's smallest normal number (1.2e-38) change nothing else.
FLUSH_EVERY = 64
TINY = np.finfo(np.float32).tiny


def _flush_subnormals(arrays: list[np.ndarray]) -> None:
    for a in arrays:
        np.putmask(a, np.abs(a) < TINY, 0)


@dataclass
class SGD:
    """w -= lr g; with momentum m: v = m v - lr g; w += v (Nesterov: w += m v - lr g)."""

    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    iterations: int = 0
    _velocity: list = field(default_factory=list, repr=False)

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        lr = np.float32(self.learning_rate)
        if self.momentum == 0:
            for w, g in zip(params, grads):
                w -= lr * g
        else:
            if not self._velocity:
                self._velocity = [np.zeros_like(w) for w in params]
            mom = np.float32(self.momentum)
            for w, g, v in zip(params, grads, self._velocity):
                v *= mom
                v -= lr * g
                w += (mom * v - lr * g) if self.nesterov else v
            if self.iterations % FLUSH_EVERY == 0:
                _flush_subnormals(self._velocity)
        self.iterations += 1


@dataclass
class RMSprop:
    """v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (Keras puts eps inside the root)."""

    learning_rate: float = 0.001
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7
    iterations: int = 0
    _velocity: list = field(default_factory=list, repr=False)
    _momentum: list = field(default_factory=list, repr=False)

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if not self._velocity:
            self._velocity = [np.zeros_like(w) for w in params]
            self._momentum = [np.zeros_like(w) for w in params]
        lr, rho, eps = np.float32(self.learning_rate), np.float32(self.rho), np.float32(self.epsilon)
        for w, g, v, m in zip(params, grads, self._velocity, self._momentum):
            v *= rho
            v += (1 - rho) * g * g
            increment = lr * g / np.sqrt(v + eps)
            if self.momentum > 0:
                m *= np.float32(self.momentum)
                m += increment
                w -= m
            else:
                w -= increment
        if self.iterations % FLUSH_EVERY == 0:
            _flush_subnormals(self._velocity + self._momentum)
        self.iterations += 1


@dataclass
class Adam:
    """m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= lr_t m / (sqrt(v) + eps).

    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) folds the bias corrections into the rate, as Keras does.
    """

    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    iterations: int = 0
    _m: list = field(default_factory=list, repr=False)
    _v: list = field(default_factory=list, repr=False)
    _buf: list = field(default_factory=list, repr=False)

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if not self._m:
            self._m = [np.zeros_like(w) for w in params]
            self._v = [np.zeros_like(w) for w in params]
        if not self._buf:  # scratch space; not state, so a resumed optimiser makes it anew
            self._buf = [np.empty_like(w) for w in params]
        t = self.iterations + 1
        b1, b2 = np.float32(self.beta_1), np.float32(self.beta_2)
        alpha = np.float32(self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t))
        eps = np.float32(self.epsilon)
        # The same arithmetic as the docstring, in place in preallocated buffers: no temporaries.
        for w, g, m, v, buf in zip(params, grads, self._m, self._v, self._buf):
            np.subtract(g, m, out=buf)
            buf *= 1 - b1
            m += buf
            np.multiply(g, g, out=buf)
            buf -= v
            buf *= 1 - b2
            v += buf
            np.sqrt(v, out=buf)
            buf += eps
            np.divide(m, buf, out=buf)
            buf *= alpha
            w -= buf
        if self.iterations % FLUSH_EVERY == 0:
            _flush_subnormals(self._m + self._v)
        self.iterations += 1


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def make_optimizer(name: str, learning_rate: float | None = None):
    """An optimiser by its Keras name, with Keras' default rate unless one is given."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ConfigError(
            f'the NumPy engine has no optimizer "{name}"; it has {", ".join(OPTIMIZERS)}.'
        ) from None
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)
