"""Scores against independent oracles: NumPy by hand, scikit-learn, Keras' own loss."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab.evaluation import metrics


def random_predictions(n=500, k=10, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return rng.integers(0, k, n), p.astype(np.float32)


def test_accuracy_and_confusion_by_hand():
    y, p = random_predictions()
    pred = p.argmax(1)
    assert metrics.accuracy(y, pred) == np.mean(y == pred)
    cm = metrics.confusion(y, pred, 10)
    by_hand = np.zeros((10, 10), int)
    for t, q in zip(y, pred):
        by_hand[t, q] += 1
    assert np.array_equal(cm, by_hand)
    assert np.trace(cm) / cm.sum() == metrics.accuracy(y, pred)


def test_cross_entropy_equals_keras():
    import keras

    y, p = random_predictions()
    p[0] = np.eye(10)[(y[0] + 1) % 10]  # a confident mistake: clipping matters
    expected = float(keras.ops.mean(keras.losses.categorical_crossentropy(np.eye(10)[y], p)))
    assert abs(metrics.cross_entropy(y, p) - expected) < 1e-5


def test_per_class_recall_is_the_confusion_diagonal_share():
    y, p = random_predictions()
    pred = p.argmax(1)
    cm = metrics.confusion(y, pred, 10)
    report = metrics.per_class(y, pred, [str(i) for i in range(10)])
    for i, row in enumerate(report):
        assert np.isclose(row["recall"], cm[i, i] / cm[i].sum())
        assert np.isclose(row["precision"], cm[i, i] / cm[:, i].sum())
        assert row["support"] == cm[i].sum()


def test_most_confused_pairs():
    cm = np.diag([50, 50, 50])
    cm[2, 1] = 7
    cm[0, 2] = 3
    assert metrics.most_confused(cm, ["a", "b", "c"]) == [
        {"true": "c", "predicted": "b", "count": 7},
        {"true": "a", "predicted": "c", "count": 3},
    ]
    assert metrics.most_confused(np.eye(3, dtype=int), ["a", "b", "c"]) == []


@pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn's, though labels= is given
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=300))))
def test_confusion_and_report_are_scikit_learns(case):
    """metrics.py writes out scikit-learn's two functions in NumPy (for its import time): same numbers."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k, pairs = case
    y, pred = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    assert np.array_equal(metrics.confusion(y, pred, k), confusion_matrix(y, pred, labels=np.arange(k)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=np.arange(k), zero_division=0)
    report = metrics.per_class(y, pred, [str(i) for i in range(k)])
    np.testing.assert_allclose([c["precision"] for c in report], p, rtol=0, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in report], r, rtol=0, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in report], f, rtol=0, atol=1e-12)
    assert [c["support"] for c in report] == list(s)
