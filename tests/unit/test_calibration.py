"""Temperature scaling and the expected calibration error."""

import numpy as np

from digitlab.evaluation.calibration import apply_temperature, expected_calibration_error, fit_temperature


def sample(n=20000, true_t=2.0, seed=0):
    """Probabilities from logits z / true_t, with labels drawn from them: calibrated at T = true_t."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 10))
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p_true = apply_temperature(softmax, true_t)
    labels = (p_true.cumsum(1) < rng.random((n, 1))).sum(1)  # a draw from each row
    return softmax, labels


def test_fit_recovers_the_temperature_and_lowers_the_ece():
    over_confident, labels = sample()
    t = fit_temperature(over_confident, labels)
    assert abs(t - 2.0) < 0.1
    before = expected_calibration_error(over_confident, labels)
    after = expected_calibration_error(apply_temperature(over_confident, t), labels)
    assert after < before / 3 and after < 0.02


def test_temperature_keeps_the_ranking():
    p, _ = sample(200)
    assert np.array_equal(apply_temperature(p, 0.5).argmax(1), p.argmax(1))
    assert np.allclose(apply_temperature(p, 1.0), p, atol=1e-9)


def test_ece_of_a_perfect_confident_classifier_is_zero():
    labels = np.arange(10).repeat(5)
    assert expected_calibration_error(np.eye(10)[labels], labels) == 0.0
