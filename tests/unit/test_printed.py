"""Printed letters for the reader's "not a digit" class (digitlab.data.printed)."""

import numpy as np
import pytest

from digitlab.data import printed
from digitlab.errors import DataError


def test_printed_letters_are_prepared_like_digits_and_drawn_the_same_way_from_the_same_seed():
    x = printed.printed_letters(40, np.random.default_rng(3))
    assert x.shape == (40, 28, 28) and x.dtype == np.uint8
    assert all(img.max() > 200 and img[0].max() == 0 and img[:, 0].max() == 0 for img in x)  # inside MNIST's margin
    assert len({img.tobytes() for img in x}) == 40
    assert (printed.printed_letters(40, np.random.default_rng(3)) == x).all()


def test_no_letter_a_hand_or_font_makes_like_a_digit_is_called_not_a_digit():
    assert not set(printed.LETTERS) & set("BGIOSZbgloqsz") and len(printed.LETTERS) == 39


def test_the_fonts_ship_with_matplotlib_and_none_is_a_font_the_benchmark_measures_with():
    """benchmarks/handwriting.py measures letters and printed digits in Pillow's font and DejaVu:
    training on those would measure nothing (matplotlib ships DejaVu too, so it is named out)."""
    paths = printed.font_paths()
    assert len(paths) == 9 and all(p.is_file() for p in paths)
    assert not any("dejavu" in p.name.lower() for p in paths)


def test_missing_fonts_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(printed, "font_paths", lambda: [tmp_path / "STIXGeneral.ttf"])
    with pytest.raises(DataError, match="STIXGeneral.ttf.*reinstall matplotlib"):
        printed.printed_letters(3, np.random.default_rng(0))
