"""Scores from labels and predicted probabilities: accuracy, loss, confusion, per-class report.

NumPy only, so they can be checked without a network. The confusion matrix and the per-class report
are scikit-learn's `confusion_matrix` and `precision_recall_fscore_support(zero_division=0)` written
out in a few lines of NumPy: importing scikit-learn takes about 1.5 s, which every training run would
pay before printing its test accuracy (tests/unit/test_metrics.py compares the two).
"""

from __future__ import annotations

import numpy as np

from digitlab.data.arrays import EPSILON, accuracy, cross_entropy  # noqa: F401 (training scores with them too)


def confusion(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    labels, predicted = np.asarray(labels, np.int64).ravel(), np.asarray(predicted, np.int64).ravel()
    inside = (labels >= 0) & (labels < num_classes) & (predicted >= 0) & (predicted < num_classes)
    cells = labels[inside] * num_classes + predicted[inside]
    return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> list[dict]:
    """Precision, recall, F1 and support for each class."""
    matrix = confusion(labels, predicted, len(class_names)).astype(np.float64)
    tp, s = np.diag(matrix), matrix.sum(axis=1)
    predicted_as = matrix.sum(axis=0)

    def share(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    p, r, f = share(tp, predicted_as), share(tp, s), share(2 * tp, predicted_as + s)
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
