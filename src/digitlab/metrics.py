"""Scores from labels and predicted probabilities: accuracy, loss, confusion, per-class report.

NumPy only, so they can be checked without a network, and cheap to import: scikit-learn's
`confusion_matrix` and `precision_recall_fscore_support` compute the same numbers (the tests hold
these to them), but importing `sklearn.metrics` pulls in SciPy and took about 3 s of every
10-15 s `digitlab train` on a 2-core CPU, for two counts over 10,000 labels.
"""

from __future__ import annotations

import numpy as np

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


def confusion(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class.

    Pairs with a label or prediction outside 0..num_classes-1 are not counted (as scikit-learn's
    `confusion_matrix(..., labels=range(num_classes))`)."""
    labels, predicted = np.asarray(labels).astype(np.int64).ravel(), np.asarray(predicted).astype(np.int64).ravel()
    inside = (labels >= 0) & (labels < num_classes) & (predicted >= 0) & (predicted < num_classes)
    cells = labels[inside] * num_classes + predicted[inside]
    return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> list[dict]:
    """Precision, recall, F1 and support for each class; 0 where a share has nothing to divide
    (scikit-learn's `zero_division=0`)."""
    matrix = confusion(labels, predicted, len(class_names))
    hits, support, chosen = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)

    def share(a, b):
        return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)

    p, r, f = share(hits, chosen), share(hits, support), share(2 * hits, support + chosen)
    return [
        {"class": name, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
        for i, name in enumerate(class_names)
    ]


def most_confused(matrix: np.ndarray, class_names: list[str], top: int = 5) -> list[dict]:
    """The largest off-diagonal cells: which true class is most often taken for which."""
    off = np.array(matrix, copy=True)
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    pairs = []
    for flat in order:
        true, pred = np.unravel_index(flat, off.shape)
        if off[true, pred] == 0:
            break
        pairs.append({"true": class_names[true], "predicted": class_names[pred], "count": int(off[true, pred])})
    return pairs
