"""The tutorials' first building block: one artificial neuron, sigmoid(w . x + b), in NumPy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """1 / (1 + e^-z), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=np.float64)
    ez = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + ez), ez / (1 + ez))


@dataclass
class Neuron:
    """A single sigmoid neuron. `Neuron([1, 2], 0).forward([1, 1])` is sigmoid(3) ~ 0.9526."""

    weights: np.ndarray = field(default_factory=lambda: np.array([1.0, 2.0]))
    bias: float = 0.0

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float64)

    def forward(self, inputs) -> np.ndarray | float:
        """The neuron's output for one input vector (d,) or a batch (n, d)."""
        out = sigmoid(np.asarray(inputs, dtype=np.float64) @ self.weights + self.bias)
        return float(out) if out.ndim == 0 else out
