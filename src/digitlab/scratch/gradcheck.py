"""Gradient checking: the analytic gradients against central finite differences in float64."""

from __future__ import annotations

import numpy as np

from digitlab.errors import ConfigError
from digitlab.scratch.network import Network


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||): scale-free, 0 for a perfect match.

    Taken over the whole array rather than entry by entry, where entries of ~1e-12 would turn
    harmless rounding into huge ratios.
    """
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / denom) if denom > 0 else 0.0


def gradcheck(net: Network, x: np.ndarray, labels: np.ndarray, eps: float = 1e-5,
              max_entries: int | None = 200, seed: int = 0) -> dict[str, float]:
    """Relative error of every parameter's and the input's gradient, by layer.

    The network must be float64 (build it with dtype=np.float64): float32 rounding swamps the
    finite differences. eps = 1e-5 balances the two errors of a central difference: rounding
    (~1e-16 |loss| / eps, which swamped the tiny input gradient of a deep sigmoid chain at 1e-6)
    and truncation (~eps^2). Dropout is off (training=False), so the function is deterministic.
    `max_entries` checks a random sample of each array's entries (None: all of them).
    """
    single = [f"{layer.name}.{k}" for layer in net.layers for k, p in layer.params.items() if p.dtype != np.float64]
    if single:  # float32's rounding gave errors of ~1e-3 on a right network, read as a wrong backward pass
        raise ConfigError(f"gradcheck needs a float64 network, and {', '.join(single)} is not: build it with "
                          "dtype=np.float64 (mlp(..., dtype=np.float64)); in float32 rounding swamps the finite "
                          "differences.")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)

    def loss_at() -> float:
        return net.loss.forward(net.forward(x, training=False), labels)

    net.loss.forward(net.forward(x, training=False), labels)
    dx = net.backward(net.loss.backward())
    analytic = {f"{layer.name}.{k}": g.copy() for layer in net.layers for k, g in layer.grads.items()}
    arrays = {f"{layer.name}.{k}": p for layer in net.layers for k, p in layer.params.items()}
    arrays["input"], analytic["input"] = x, dx
    errors = {}
    for name, array in arrays.items():
        flat = array.reshape(-1)
        chosen = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            chosen = rng.choice(flat.size, max_entries, replace=False)
        numeric = np.empty(len(chosen))
        for j, i in enumerate(chosen):
            keep = flat[i]
            flat[i] = keep + eps
            up = loss_at()
            flat[i] = keep - eps
            down = loss_at()
            flat[i] = keep
            numeric[j] = (up - down) / (2 * eps)
        errors[name] = relative_error(analytic[name].reshape(-1)[chosen], numeric)
    return errors
