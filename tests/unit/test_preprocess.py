"""Scaling, reshaping, one-hot labels and the seeded validation split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitlab.errors import ConfigError
from digitlab.data.arrays import flatten, one_hot, scale, shape_for, split_validation


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(0, 5), st.just(28), st.just(28))))
def test_scale_and_shape_for_every_input(images):
    x = shape_for(images, (784,))
    assert x.dtype == np.float32 and x.shape == (len(images), 784)
    assert x.min(initial=0) >= 0 and x.max(initial=1) <= 1
    np.testing.assert_allclose(x.reshape(images.shape) * 255, images, atol=1e-4)
    assert shape_for(images, (28, 28, 1)).shape == (len(images), 28, 28, 1)


def test_scale_endpoints_and_flatten():
    assert scale(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert flatten(np.zeros((3, 28, 28))).shape == (3, 784)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"do not fit a model input of shape \(100,\)"):
        shape_for(np.zeros((2, 28, 28), np.uint8), (100,))


def test_one_hot():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ConfigError, match="labels must be in 0..2"):
        one_hot(np.array([3]), 3)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), fraction=st.floats(0, 0.9), seed=st.integers(0, 2**31))
def test_split_is_a_seeded_partition(n, fraction, seed):
    x = np.arange(n)
    y = np.arange(n) % 10
    (xt, yt), (xv, yv) = split_validation(x, y, fraction, seed)
    assert len(xv) == round(n * fraction) and len(xt) + len(xv) == n
    assert sorted(np.concatenate([xt, xv]).tolist()) == list(range(n))
    assert np.array_equal(yt, xt % 10) and np.array_equal(yv, xv % 10)
    (xt2, _), _ = split_validation(x, y, fraction, seed)
    assert np.array_equal(xt, xt2)


def test_split_depends_on_the_seed():
    x = np.arange(1000)
    _, (a, _) = split_validation(x, x, 0.1, 1)
    _, (b, _) = split_validation(x, x, 0.1, 2)
    assert not np.array_equal(a, b)
