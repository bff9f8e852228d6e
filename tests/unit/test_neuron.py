"""The tutorials' single artificial neuron."""

import numpy as np

from digitlab import Neuron
from digitlab.scratch.neuron import sigmoid


def test_the_tutorial_neuron():
    neuron = Neuron(weights=[1, 2], bias=0)
    assert abs(neuron.forward([1, 1]) - 0.9526) < 1e-4
    assert np.isclose(neuron.forward([1, 1]), 1 / (1 + np.exp(-3)))


def test_batches_and_extremes():
    out = Neuron([1, 2], 0).forward([[1, 1], [0, 0], [-1000, 0]])
    assert np.allclose(out, [0.952574, 0.5, 0.0], atol=1e-6)
    assert np.all(np.isfinite(sigmoid(np.array([-1e4, 1e4]))))
