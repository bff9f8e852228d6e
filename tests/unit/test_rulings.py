"""Form lines (underline, frame, boxes, comb, ruled paper) taken out before `read` cuts a number."""

import numpy as np
import pytest

from digitlab.images import rulings
from digitlab.images.rulings import remove_rulings

PEN = 6


def ring(mask, top, left, height=40, width=24, pen=PEN):
    """A digit-like stroke: the outline of a box, `pen` wide."""
    mask[top : top + height, left : left + width] = True
    mask[top + pen : top + height - pen, left + pen : left + width - pen] = False


def number(count=4, shape=(80, 200)):
    mask = np.zeros(shape, bool)
    for k in range(count):
        ring(mask, 18, 20 + 40 * k)
    return mask


def test_an_underline_touching_the_digits_is_taken_out_and_the_digits_stay():
    digits = number()
    lined = digits.copy()
    lined[57:60, 5:195] = True  # 2 rows under the digits' bottoms (row 57): they touch
    out = remove_rulings(lined)
    assert not out[57:60, 5:20].any() and not out[57:60, 180:195].any()  # the line, where no digit is
    assert not (out & ~digits).any() and out[:54].sum() == digits[:54].sum()  # the digits, but where they touch it


def test_a_slightly_tilted_rule_is_a_rule():
    digits = number()
    lined = digits.copy()
    for x in range(5, 195):  # 3 degrees off level
        y = 64 + int(x * np.tan(np.radians(3)))
        lined[y : y + 2, x] = True
    assert (remove_rulings(lined) == digits).all()


def test_a_frame_and_a_comb_go_and_a_digit_touching_the_comb_stays():
    digits = number()
    framed = digits.copy()
    framed[2:4, 2:198] = framed[76:78, 2:198] = True
    framed[2:78, 2:4] = framed[2:78, 196:198] = True
    assert (remove_rulings(framed) == digits).all()
    comb = digits.copy()
    comb[8:10, 14:176] = comb[68:70, 14:176] = True
    for x in range(14, 177, 40):
        comb[8:70, x : x + 2] = True  # sides from line to line; the first digit's left stroke touches one
    digits_touching = digits.copy()
    comb[30:36, 16:20] = digits_touching[30:36, 16:20] = True  # the first digit's stroke runs into its box
    out = remove_rulings(comb)
    assert not out[8:10].any() and not out[60:70, 14:16].any()
    assert not (out & ~digits_touching).any()  # the digit stays, but for the pixel beside the side it touched
    assert (out[12:66, 17:] == digits_touching[12:66, 17:]).all()


def test_a_box_around_a_digit_goes_but_a_ring_around_a_dot_stays():
    boxed = np.zeros((80, 80), bool)
    boxed[5:75, 10:12] = boxed[5:75, 60:62] = boxed[5:7, 10:62] = boxed[73:75, 10:62] = True
    inside = np.zeros_like(boxed)
    ring(inside, 18, 24)
    assert (remove_rulings(boxed | inside) == inside).all()
    zero = np.zeros((80, 80), bool)
    ring(zero, 5, 20, height=70, width=40)
    zero[36:44, 37:43] = True  # a monospace font's "0": a dot inside, not a digit in a box
    assert (remove_rulings(zero) == zero).all()


def test_a_pen_stroke_as_long_as_a_rule_is_no_rule():
    """A bar drawn with the digits' own pen (a long "2" base, a dash, a scribble's line) stays:
    rules are thinner than the writing (RULE_THIN)."""
    digits = number()
    barred = digits.copy()
    barred[62 : 62 + PEN, 5:195] = True
    assert (remove_rulings(barred) == barred).all()


def test_boxes_in_boxes_are_not_each_looked_at(monkeypatch):
    """Each enclosing piece costs a look at its whole box: beyond MAX_BOXES of them, none is."""
    nested = np.zeros((300, 300), bool)
    for k in range(0, 140, 6):
        nested[k : 300 - k, k : 300 - k] = True
        nested[k + 2 : 298 - k, k + 2 : 298 - k] = False
    assert (rulings._boxes(nested) == 0).all()
    monkeypatch.setattr(rulings, "MAX_BOXES", 100)
    assert rulings._boxes(nested).any()


@pytest.fixture(scope="module")
def train_digits():
    from digitlab.data.pen import load_pen_digits

    return load_pen_digits("train")  # real data: a DataError, not a skip, when it is missing


def test_a_digit_alone_is_never_changed(train_digits):
    from PIL import Image

    from digitlab.images.prepare import ink_mask
    from digitlab.images.read import to_ink
    from digitlab.images.strokes import draw_strokes
    from digitlab.recognize import FAINT

    for digit in train_digits[:600:10]:
        for pen in (8, 20, 36):
            mask = ink_mask(to_ink(Image.fromarray(draw_strokes(digit.strokes, pen_width=pen))), FAINT)
            assert (remove_rulings(mask) == mask).all()


@pytest.mark.parametrize("form", ["underline", "tilted underline", "frame", "comb", "ruled paper"])
def test_a_number_on_a_form_reads_as_it_does_plain(train_digits, form):
    """Issue 25: a line under or around a number joined its digits into one piece, read "?"."""
    from digitlab.images.strokes import draw_number
    from digitlab.images.synthetic import on_form
    from digitlab.recognize import Recognizer

    reader = Recognizer.load("reader")
    rng = np.random.default_rng(3)
    for _ in range(4):
        picked = [train_digits[int(i)] for i in rng.integers(0, len(train_digits), int(rng.integers(3, 7)))]
        plain = draw_number([d.strokes for d in picked], rng)
        truth = "".join(str(d.label) for d in picked)
        if reader.read(plain).text == truth:
            assert reader.read(on_form(plain, len(picked), form)).text == truth


@pytest.mark.parametrize("page", ["nested squares", "grid"])
def test_a_page_of_boxes_or_a_grid_reads_as_no_number(page):
    """Attacker's pages: boxes in boxes, a grid of lines. No digit comes out, and no traceback."""
    from PIL import Image, ImageDraw

    from digitlab.errors import ImageError
    from digitlab.recognize import Recognizer

    image = Image.new("L", (512, 512), 255)
    draw = ImageDraw.Draw(image)
    for k in range(0, 250, 6) if page == "nested squares" else range(0, 512, 12):
        if page == "nested squares":
            draw.rectangle([k, k, 511 - k, 511 - k], outline=0, width=2)
        else:
            draw.line([(0, 2 * k), (511, 2 * k)], fill=0, width=2)
            draw.line([(2 * k, 0), (2 * k, 511)], fill=0, width=2)
    try:
        text = Recognizer.load("reader").read(image).text
    except ImageError:
        return
    assert set(text) <= {"?"}


@pytest.mark.parametrize("height", [44, 45, 51, 59])
def test_a_frame_of_any_height_goes(height):
    """A review found sides shorter than about 80 pixels missed: the last partial cell of pooled
    columns never counted as ink."""
    digits = np.zeros((height, 200), bool)
    for k in range(4):
        ring(digits, 8, 20 + 40 * k, height=height - 16, width=24, pen=5)
    framed = digits.copy()
    framed[1:3, 2:198] = framed[height - 3 : height - 1, 2:198] = True
    framed[1 : height - 1, 2:4] = framed[1 : height - 1, 196:198] = True
    assert (remove_rulings(framed) == digits).all()


def test_a_seven_whose_bar_overhangs_a_one_is_no_box():
    """A review found a "7" taken for a box around the "1" under its bar: a box holds its digit on
    four sides."""
    mask = np.zeros((80, 80), bool)
    mask[5:8, 5:75] = True  # the bar
    for y in range(5, 75):  # the stem, nearly plumb
        x = 72 - (y - 5) // 10
        mask[y, x - 2 : x + 1] = True
    mask[20:70, 30:34] = True  # a "1" under the bar
    assert (remove_rulings(mask) == mask).all()
