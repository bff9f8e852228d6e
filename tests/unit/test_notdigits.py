"""The "not a digit" class: its training images (digitlab.data.notdigits) and how a recognizer
answers when a model picks it."""

from __future__ import annotations

import numpy as np

from digitlab.data.notdigits import LETTERS, NOT_A_DIGIT, not_digit_images
from digitlab.data.pen import MNIST_PEN_CLASSES
from digitlab.recognize import Recognizer

CLASSES = list(MNIST_PEN_CLASSES)


def test_not_digit_images_are_prepared_like_digits_and_reproducible():
    x = not_digit_images(40, np.random.default_rng(3))
    assert x.shape == (40, 28, 28) and x.dtype == np.uint8
    assert all(img.max() > 0 for img in x)  # nothing blank
    assert (x == not_digit_images(40, np.random.default_rng(3))).all()
    assert not set(LETTERS) & set("OIlSZBGqg0123456789")  # no letter a hand writes like a digit
    assert CLASSES[-1] == NOT_A_DIGIT and len(CLASSES) == 11


class Fixed:
    """A model that gives every image the same probabilities."""

    input_shape = (None, 28, 28)
    thread_safe = True

    def __init__(self, probabilities):
        self.p = np.asarray(probabilities, np.float32)

    def predict(self, x, batch_size=None, verbose=0):
        return np.tile(self.p, (len(x), 1))


def one() -> np.ndarray:
    image = np.zeros((60, 60), np.uint8)
    image[10:50, 28:33] = 255
    return image


def test_a_not_a_digit_answer_is_unsure_and_says_why():
    p = np.full(11, 0.01)
    p[10], p[4] = 0.85, 0.06
    (pred,) = Recognizer(Fixed(p / p.sum()), CLASSES).predict(one())
    assert pred.status == "unsure" and pred.digit is None
    assert 'does not look like a digit: the model\'s "not a digit" class has 85.0%; the likeliest digit is 4' in pred.message


def test_reading_a_number_does_not_count_not_a_digit_as_confidence():
    """The reading is the segmentation whose digits the model is jointly surest of; a piece the model
    calls "not a digit" must count against that, not as a sure answer."""
    p = np.full(11, 0.001)
    p[10], p[7] = 0.9, 0.09
    reading = Recognizer(Fixed(p / p.sum()), CLASSES).read(one())
    assert reading.text == "?" and reading.digits[0].status == "unsure"
