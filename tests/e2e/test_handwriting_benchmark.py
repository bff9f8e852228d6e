"""benchmarks/handwriting.py keeps working, and the shipped reader keeps calling letters letters."""

from __future__ import annotations

from digitlab.data.pen import load_pen_digits
from digitlab.recognize import Recognizer
from tests.conftest import require_real_data


def test_the_handwriting_benchmark_measures_a_few_dev_digits_end_to_end():
    import handwriting  # benchmarks/ (tests/e2e/conftest.py puts it on the path)

    digits = load_pen_digits("dev", require_real_data("mnist"))[:30]
    result = handwriting.measure("reader", digits, numbers=3, seed=0)
    assert set(result["dev_digits"]) == set(handwriting.STYLES) and result["preset"] == "reader"
    assert result["font_letters_unsure"]["fonts"] >= 1  # Pillow's own font at least
    assert result["dev_page_shown"] <= result["dev_digits"]["page"]  # an answer shown is a best guess, not every one
    assert 0 <= result["dev_numbers_alone"] <= 1
    assert "52 letters x" in handwriting.table(result)
    assert result["not_digits_read_unsure"]["noise"] == 1.0 and "read as a number" in handwriting.table(result)
    assert set(result["cells"]) == {"plain", *handwriting.CELLS} and "digits alone, page" in handwriting.table(result)


def test_letters_of_any_font_that_look_like_no_digit_are_mostly_not_digits():
    """No font letter is among the reader's training images. The reader of 2026-12-05 reported 61%
    of them unsure (it read D, J, L, Q, T, Y, a, d, f, r, t... as digits); the shipped one 86%."""
    import handwriting

    share = handwriting.font_letters(Recognizer.load("reader"))["not_digit_shaped"]
    assert share >= 0.8, share
