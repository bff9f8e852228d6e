"""Scores from labels and predicted probabilities: accuracy, loss, confusion, per-class report.

NumPy and scikit-learn only, so they can be checked without a network.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix as _sk_confusion
from sklearn.metrics import precision_recall_fscore_support

from digitlab.data.arrays import EPSILON, accuracy, cross_entropy  # noqa: F401 (training scores with them too)


def confusion(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    return _sk_confusion(labels, predicted, labels=np.arange(num_classes))


def per_class(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> list[dict]:
    """Precision, recall, F1 and support for each class."""
    p, r, f, s = precision_recall_fscore_support(
        labels, predicted, labels=np.arange(len(class_names)), zero_division=0
    )
    return [
        {"class": name, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
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
