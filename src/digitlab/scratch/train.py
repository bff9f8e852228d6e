"""Training loops of the NumPy engine: shuffled mini-batches, one optimiser step each."""

from __future__ import annotations

import numpy as np

from digitlab.errors import TrainingDiverged  # noqa: F401 (raised here; importers found it here)
from digitlab.scratch.layers import Dense
from digitlab.scratch.network import Network


def train_epoch(net: Network, optimizer, x: np.ndarray, labels: np.ndarray, batch_size: int,
                rng: np.random.Generator, epoch: int = 1) -> tuple[float, float]:
    """One pass over (x, labels) in a random order. Returns the mean loss and accuracy seen in
    training (dropout on), as Keras' progress line reports them."""
    order = rng.permutation(len(x))
    total_loss, correct = 0.0, 0
    for batch, start in enumerate(range(0, len(x), batch_size), 1):
        idx = order[start : start + batch_size]
        xb, yb = x[idx], labels[idx]
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging batch is reported once, below, not
            loss = net.train_batch(xb, yb, optimizer)       # as NumPy's overflow warnings before it
        if not np.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {loss} in epoch {epoch}, batch {batch}: training diverged. "
                "Try a smaller --learning-rate."
            )
        total_loss += loss * len(idx)
        correct += int(np.sum(net.loss.probs.argmax(axis=1) == yb))
    return total_loss / len(x), correct / len(x)


def evaluate(net: Network, x: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and accuracy with dropout off."""
    total, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], labels[start : start + batch_size]
        total += net.loss.forward(net.forward(xb), yb) * len(xb)
        correct += int(np.sum(net.loss.probs.argmax(axis=1) == yb))
    return total / len(x), correct / len(x)


def layer_health(net: Network, x_probe: np.ndarray, y_probe: np.ndarray,
                 before: list[np.ndarray]) -> dict[str, float]:
    """Per Dense layer: the gradient norm of its kernel on a probe batch, and how far the kernel
    moved since `before` relative to its size (||W - W_before|| / ||W_before||)."""
    net.loss_and_grads(x_probe, y_probe, training=False)
    out = {}
    for layer, old in zip(net.dense_layers(), before):
        out[f"grad_norm/{layer.name}"] = float(np.linalg.norm(layer.grads["kernel"]))
        moved = np.linalg.norm(layer.params["kernel"] - old) / max(float(np.linalg.norm(old)), 1e-12)
        out[f"update_ratio/{layer.name}"] = float(moved)
    return out


def kernels(net: Network) -> list[np.ndarray]:
    return [layer.params["kernel"].copy() for layer in net.layers if isinstance(layer, Dense)]
