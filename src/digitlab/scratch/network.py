"""A network of the from-scratch engine: a list of layers ending in softmax cross-entropy.

    >>> net = mlp([784, 512, 10], activation="relu", rng=np.random.default_rng(0))
    >>> loss = net.train_batch(x, labels, Adam())      # forward, backward, one optimiser step
    >>> probabilities = net.predict_proba(x_test)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from digitlab.scratch.layers import ACTIVATIONS, Dense, Dropout, SoftmaxCrossEntropy, softmax


class Network:
    """Layers applied in order; the last layer's outputs are logits for softmax cross-entropy."""

    def __init__(self, layers: Sequence):
        self.layers = list(layers)
        self.loss = SoftmaxCrossEntropy()
        counts: dict[str, int] = {}
        for layer in self.layers:  # Keras-like names, used in messages and diagnostics
            kind = type(layer).__name__.lower()
            counts[kind] = counts.get(kind, 0) + 1
            layer.name = f"{kind}_{counts[kind]}"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if training and self.layers and not isinstance(self.layers[0], Dense):
            x = np.array(x)  # an activation first: ReLU reuses its input in training, which is the caller's here
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dlogits: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate dLoss/dLogits through every layer; returns dLoss/dInput if asked."""
        grad = dlogits
        for i in range(len(self.layers) - 1, 0, -1):
            grad = self.layers[i].backward(grad)
        first = self.layers[0]
        return first.backward(grad, input_grad) if isinstance(first, Dense) else first.backward(grad)

    def loss_and_grads(self, x: np.ndarray, labels: np.ndarray, training: bool = True) -> float:
        """Forward and backward on one batch: returns the mean loss, fills every layer's grads."""
        loss = self.loss.forward(self.forward(x, training), labels)
        self.backward(self.loss.backward(), input_grad=False)
        return loss

    def train_batch(self, x: np.ndarray, labels: np.ndarray, optimizer) -> float:
        loss = self.loss_and_grads(x, labels, training=True)
        optimizer.step(self.parameters(), self.gradients())
        return loss

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params.values()]

    def gradients(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.grads.values()]

    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def predict_proba(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Softmax probabilities, in batches (inference: dropout off)."""
        out = [softmax(self.forward(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dense_layers()[-1].shape[1]), np.float32)

    def count_params(self) -> int:
        return int(sum(p.size for p in self.parameters()))


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    *,
    dropout: float = 0.0,
    init: str = "glorot_uniform",
    std: float = 0.05,
    rng: np.random.Generator | None = None,
    dtype=np.float32,
) -> Network:
    """A dense network: sizes [784, 512, 10] gives Dense 784->512, activation, Dense 512->10."""
    rng = rng if rng is not None else np.random.default_rng()
    layers: list = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out, init=init, std=std, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(Dropout(dropout, rng))
    return Network(layers)
