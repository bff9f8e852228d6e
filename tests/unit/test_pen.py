"""Pen trajectories (digitlab.data.pen) and drawing them (digitlab.images.strokes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab.data import pen
from digitlab.data.pen import load_pen_digits, pen_training_split
from digitlab.errors import DataError
from digitlab.images.strokes import draw_number, draw_strokes
from tests.conftest import DATA_DIR

ONE = [[[0.5, 0.0], [0.5, 1.0]]]  # a "1": one vertical stroke


def test_the_shared_pen_digits_load_and_dev_writers_are_not_train_writers():
    train, dev = load_pen_digits("train", DATA_DIR), load_pen_digits("dev", DATA_DIR)
    assert (len(train), len(dev)) == (4064, 386)
    assert {d.label for d in dev} == set(range(10))
    assert not {d.writer for d in train} & {d.writer for d in dev}


def write(tmp_path, records) -> str:
    path = tmp_path / "digits.json"
    path.write_text(json.dumps(records))
    return str(path)


@pytest.mark.parametrize("records, says", [
    ({"label": 1}, "expected a JSON list of digits"),
    ([{"label": 10, "strokes": ONE}], "digit 0: label must be an integer 0-9, found 10"),
    ([{"label": True, "strokes": ONE}], "label must be an integer 0-9"),
    ([{"label": 1, "strokes": []}], "digit 0: strokes must be a non-empty list"),
    ([{"label": 1, "strokes": ONE}, {"label": 1, "strokes": [[]]}], "digit 1: stroke 0 must be a non-empty list"),
    ([{"label": 1, "strokes": [[[0.5, "x"]]]}], "stroke 0 has a point that is not [x, y] in the unit box"),
    ([{"label": 1, "strokes": [[[0.5, 1e300]]]}], "not [x, y] in the unit box"),
    ([{"label": 1, "strokes": [[[0.5, 0.5, 0.5]]]}], "not [x, y] in the unit box"),
    ([{"label": 1, "strokes": ONE, "site": 3}], "site and writer must be strings"),
])
def test_a_bad_file_is_one_line_naming_the_digit_and_field(tmp_path, records, says):
    with pytest.raises(DataError, match=None) as e:
        load_pen_digits(write(tmp_path, records))
    assert says in str(e.value) and "digits.json" in str(e.value)


def test_a_missing_or_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="no such file; the pen digits come with the shared data"):
        load_pen_digits("dev", tmp_path)
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe[")
    with pytest.raises(DataError, match="not a readable JSON file"):
        load_pen_digits(tmp_path / "bad.json")


json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 12) | st.floats(allow_nan=True) | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["label", "strokes", "site", "writer", "w"]), inner, max_size=4),
                           max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(json_values, max_size=3))
def test_any_json_gives_digits_or_one_data_error(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("pen") / "d.json"
    path.write_text(json.dumps(records))
    try:
        digits = load_pen_digits(path)
    except DataError:
        return
    assert all(0 <= d.label <= 9 and d.strokes for d in digits)


def test_a_stroke_is_drawn_as_the_page_draws_it():
    image = draw_strokes(ONE)  # 280 x 280, pen 20 px, the digit 70% of the height
    assert image.shape == (280, 280) and image.dtype == np.uint8
    dark = image < 128
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    assert abs((cols[0] + cols[-1]) / 2 - 139.5) <= 1 and 18 <= cols[-1] - cols[0] + 1 <= 22  # centred, 20 px wide
    assert abs((rows[-1] - rows[0] + 1) - (196 + 20)) <= 2  # 70% of 280, plus the round caps
    assert (draw_strokes(ONE, light_on_dark=True) == 255 - image).all()
    number = draw_number([ONE, ONE, ONE], np.random.default_rng(0))
    assert number.shape == (240, 720)


def test_pen_training_images_are_drawn_once_then_taken_from_the_cache(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "pen-digits"
    folder.mkdir(parents=True)
    (folder / "train.json").write_text(json.dumps([{"label": 1, "strokes": ONE}, {"label": 7, "strokes": [
        [[0.1, 0.1], [0.9, 0.1], [0.4, 1.0]]]}]))
    cache = tmp_path / "cache"
    x, y = pen_training_split(tmp_path / "data", renderings=3, not_digits=2, printed=4, cache_dir=cache)
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8 and list(y[:8]) == [1, 1, 1, 7, 7, 7, 10, 10]
    assert list(y[8:]) == [10] * 4  # printed letters: not digits either
    assert all(img.max() > 200 for img in x[:6]) and len({img.tobytes() for img in x}) == 12  # all different
    (cached,) = cache.iterdir()
    monkeypatch.setattr(pen, "pen_variations", lambda *a: pytest.fail("drawn again instead of read from the cache"))
    again = pen_training_split(tmp_path / "data", renderings=3, not_digits=2, printed=4, cache_dir=cache)
    assert (again[0] == x).all()
    monkeypatch.undo()
    cached.write_bytes(b"damaged")
    repaired = pen_training_split(tmp_path / "data", renderings=3, not_digits=2, printed=4, cache_dir=cache)
    assert (repaired[0] == x).all() and cached.stat().st_size > 1000  # the same seed draws the same images


def test_mnist_plus_pen_is_a_data_set_name():
    from digitlab.data.userdata import dataset_info

    info = dataset_info("mnist+pen")
    assert info.class_names == (*"0123456789", "not a digit") and "pen-digits" in info.description


def test_mnist_plus_pen_loads_mnist_then_the_pen_images(monkeypatch):
    """The data set's plumbing, with the pen images stubbed (drawing them all takes minutes; the
    drawing itself is tested above): MNIST's training digits first, then the pen split; MNIST's test set."""
    from digitlab.data import userdata

    pen_x = np.full((5, 28, 28), 7, np.uint8)
    pen_y = np.array([1, 2, 3, 10, 10], np.uint8)
    monkeypatch.setattr(userdata, "pen_training_split", lambda data_dir, cache_dir=None: (pen_x, pen_y))
    (x, y), (xt, yt) = userdata.load_dataset("mnist+pen", data_dir=DATA_DIR)
    assert x.shape == (60_005, 28, 28) and (x[-5:] == 7).all() and list(y[-5:]) == [1, 2, 3, 10, 10]
    assert xt.shape == (10_000, 28, 28) and int(yt.max()) == 9
