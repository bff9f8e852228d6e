"""The NumPy pieces of preparation give exactly what scipy.ndimage gives, which they replace."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from digitlab.images import components
from digitlab.images.components import (
    center_of_mass,
    component_of_runs,
    dilate_cross,
    large_pieces,
    runs,
    shift_whole,
)

masks = arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24)))


def label_image(mask: np.ndarray) -> np.ndarray:
    """Our labels painted back into an image, numbered from 1 like ndimage.label's."""
    r, s, e = runs(mask)
    out = np.zeros(mask.shape, np.int32)
    for row, start, end, piece in zip(r, s, e, component_of_runs(r, s, e)):
        out[row, start:end] = piece + 1
    return out


def reference_large_pieces(mask: np.ndarray, share: float) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n <= 1:
        return mask
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    return np.isin(labels, np.flatnonzero(sizes >= share * sizes.max()) + 1)


@settings(max_examples=300, deadline=None)
@given(masks)
def test_pieces_are_scipys_pieces_numbered_the_same(mask):
    expected, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    assert np.array_equal(label_image(mask), expected)


@settings(max_examples=300, deadline=None)
@given(masks, st.sampled_from([0.05, 0.3, 1.0]))
def test_small_pieces_are_dropped_as_scipy_would(mask, share):
    assert np.array_equal(large_pieces(mask, share), reference_large_pieces(mask, share))


def test_beyond_max_runs_scipy_labels_with_the_same_result(monkeypatch):
    mask = np.random.default_rng(0).random((60, 60)) < 0.3
    ours = large_pieces(mask, 0.05)
    monkeypatch.setattr(components, "MAX_RUNS", 10)
    assert np.array_equal(large_pieces(mask, 0.05), ours)
    assert np.array_equal(ours, reference_large_pieces(mask, 0.05))


@settings(max_examples=200, deadline=None)
@given(masks, st.integers(1, 3))
def test_dilation_is_scipys(mask, iterations):
    assert np.array_equal(dilate_cross(mask, iterations), ndimage.binary_dilation(mask, iterations=iterations))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, (28, 28), elements=st.floats(0, 1, width=32)).filter(lambda a: a.sum() > 0))
def test_centre_of_mass_is_scipys_to_the_last_bit(image):
    assert center_of_mass(image) == ndimage.center_of_mass(image)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, (28, 28), elements=st.floats(0, 1, width=32)), st.integers(-30, 30), st.integers(-30, 30))
def test_whole_pixel_shifts_are_scipys(image, dy, dx):
    assert np.array_equal(shift_whole(image, dy, dx), ndimage.shift(image, (dy, dx), order=0, mode="constant"))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (1, 1)])
def test_degenerate_masks(shape):
    mask = np.ones(shape, bool)
    assert np.array_equal(large_pieces(mask, 0.05), mask)
    assert np.array_equal(dilate_cross(mask, 2), ndimage.binary_dilation(mask, iterations=2))


@settings(max_examples=200, deadline=None)
@given(arrays(float, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.floats(0, 1)),
       st.integers(1, 300), st.integers(1, 300))
def test_zoom_is_scipys_to_within_a_rounding(grid, h, w):
    from digitlab.images.components import zoom_linear

    expected = ndimage.zoom(grid, (h / grid.shape[0], w / grid.shape[1]), order=1, mode="nearest",
                            grid_mode=True)[:h, :w]
    got = zoom_linear(grid, (h, w))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)  # 2e-16: the order of a sum in C


@settings(max_examples=300, deadline=None)
@given(masks, st.booleans())
def test_pieces_and_boxes_are_scipys(mask, beyond_max_runs):
    from digitlab.images.components import pieces

    expected, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = [(a.start, b.start, a.stop, b.stop) for a, b in ndimage.find_objects(expected)]
    original = components.MAX_RUNS
    components.MAX_RUNS = -1 if beyond_max_runs else original
    try:
        labels, got = pieces(mask)
    finally:
        components.MAX_RUNS = original
    assert np.array_equal(labels, expected) and got == boxes
