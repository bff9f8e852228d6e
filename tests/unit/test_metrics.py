"""Scores against independent oracles: NumPy by hand, scikit-learn, Keras' own loss."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab import metrics


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


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.tuples(st.integers(-1, k), st.integers(-1, k)), max_size=200))))
def test_confusion_and_per_class_equal_scikit_learn(case):
    """Any labels and predictions, classes never predicted or never present, values out of range."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k, pairs = case
    y = np.array([a for a, _ in pairs], int)
    pred = np.array([b for _, b in pairs], int)
    inside = (y >= 0) & (y < k) & (pred >= 0) & (pred < k)
    if (y[(y >= 0) & (y < k)]).size:  # scikit-learn refuses labels none of which is in y
        expected = confusion_matrix(y, pred, labels=np.arange(k))
        if inside.any():  # out-of-range pairs are simply not counted
            assert np.array_equal(expected, confusion_matrix(y[inside], pred[inside], labels=np.arange(k)))
    else:
        expected = np.zeros((k, k), int)
    assert np.array_equal(metrics.confusion(y, pred, k), expected)
    report = metrics.per_class(y, pred, [f"c{i}" for i in range(k)])
    if inside.any():
        p, r, f, s = precision_recall_fscore_support(y[inside], pred[inside], labels=np.arange(k), zero_division=0)
        assert np.allclose([row["precision"] for row in report], p)
        assert np.allclose([row["recall"] for row in report], r)
        assert np.allclose([row["f1"] for row in report], f)
        assert [row["support"] for row in report] == list(s)
    else:
        assert all(row["support"] == 0 and row["f1"] == 0 for row in report)
