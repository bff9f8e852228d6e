"""Images that are not digits, for a model that must say so: the "not a digit" class of mnist+pen.

A network trained on digits alone has no way to answer "none of these": shown noise or a letter,
it picks the digit it resembles most, often at 99%. Training with a class of such images (Hendrycks
et al. 2019, "Deep anomaly detection with outlier exposure", in its simplest form) teaches it to.
They are drawn the way digits are, then prepared as `predict` prepares any image:

- letters and signs written with a pen (stroke skeletons below, drawn with the pen digits' width,
  slant and wobble), leaving out those that a hand writes like a digit (O, I, l, S, Z, B, G, q...);
  D, J, L, P, Q, T, Y and d, f, n, r, t are in: each differs from the digit it is nearest (D 0,
  J 1, L 1, P 9, Q 0, T 7, Y 4, d 6...) in a way a reader can see (a straight side, a hook, a foot,
  a mirrored bowl, a tail, a centred stem); and printed forms a hand seldom writes: the two
  shapes of "a", "u" and "p" with their stems, "y", "j", a J without its bar;
- scribbles: a pen wandering in loops, or zigzagging between random points;
- noise: uniform grey, sparse dots, dense speckle, hatching, filled blobs.

Letters drawn from a font, as `benchmarks/handwriting.py` measures with, are not among them. Its
scribbles (a round pen through 8 to 20 random points) are of the zigzags' kind, so that row of
its table is less of a surprise to the reader than the font letters are.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from digitlab.errors import ImageError
from digitlab.images.prepare import to_mnist
from digitlab.images.read import to_ink
from digitlab.images.strokes import draw_strokes

NOT_A_DIGIT = "not a digit"  # the class name; `digitlab.recognize` answers "unsure" for it


def _arc(cx, cy, r, start, end, n=12):
    return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
            for a in np.linspace(start, end, n)]


# Stroke skeletons in a unit box, y downwards.
LETTERS = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.25, 0.55), (0.75, 0.55)]],
    "C": [_arc(0.55, 0.5, 0.5, 40, 320)],
    "E": [[(0.9, 0), (0, 0), (0, 1), (0.9, 1)], [(0, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0), (0, 0), (0, 1)], [(0, 0.5), (0.7, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(0.9, 0), (0, 0.55)], [(0.3, 0.4), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "R": [[(0, 1), (0, 0), (0.7, 0), (0.9, 0.15), (0.9, 0.35), (0.7, 0.5), (0, 0.5)], [(0.4, 0.5), (1, 1)]],
    "U": [[(0, 0), (0, 0.7), (0.2, 1), (0.8, 1), (1, 0.7), (1, 0)]],
    "D": [[(0, 0), (0, 1)], [(0, 0), (0.45, 0), *_arc(0.45, 0.5, 0.5, -90, 90), (0, 1)]],
    "J": [[(0.2, 0), (1, 0)], [(0.7, 0), (0.7, 0.75), *_arc(0.45, 0.75, 0.25, 0, 170, 6)]],
    "L": [[(0, 0), (0, 1), (0.75, 1)]],
    "P": [[(0, 1), (0, 0), (0.55, 0), *_arc(0.55, 0.27, 0.27, -90, 90, 8), (0, 0.54)]],
    "Q": [_arc(0.5, 0.5, 0.5, 0, 360, 16), [(0.6, 0.7), (1, 1.05)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.4), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "e": [[(0.1, 0.6), (0.9, 0.6), *_arc(0.5, 0.6, 0.4, 0, -200), *_arc(0.5, 0.6, 0.4, 160, 40, 6)]],
    "h": [[(0.1, 0), (0.1, 1)], [(0.1, 0.6), *_arc(0.5, 0.65, 0.4, 200, 360, 6), (0.9, 1)]],
    "k": [[(0.1, 0), (0.1, 1)], [(0.8, 0.4), (0.1, 0.75), (0.9, 1)]],
    "m": [[(0, 1), (0, 0.4), *_arc(0.25, 0.5, 0.25, 180, 360, 6), (0.5, 1)], [(0.5, 0.5), *_arc(0.75, 0.5, 0.25, 180, 360, 6), (1, 1)]],
    "w": [[(0, 0.3), (0.2, 1), (0.5, 0.5), (0.8, 1), (1, 0.3)]],
    "d": [_arc(0.4, 0.65, 0.35, 0, 360, 12), [(0.75, 0), (0.75, 1)]],
    "f": [[*_arc(0.6, 0.2, 0.2, -20, -180, 6), (0.4, 1)], [(0.15, 0.45), (0.7, 0.45)]],
    "n": [[(0, 0), (0, 1)], [(0, 0.25), *_arc(0.45, 0.45, 0.45, 200, 360, 6), (0.9, 1)]],
    "r": [[(0, 0.2), (0, 1)], [(0, 0.5), *_arc(0.5, 0.45, 0.45, 200, 300, 5)]],
    "t": [[(0.4, 0), (0.4, 0.85), *_arc(0.6, 0.85, 0.2, 180, 60, 5)], [(0.1, 0.3), (0.8, 0.3)]],
    # Printed forms a hand seldom makes, whose nearest digit is sure of them otherwise (a font's "a"
    # was read as 2 at 100%, its "J" as 1 or 5, "y" as 4, "p" as 0, "u" as 4).
    "a": [[*_arc(0.5, 0.25, 0.3, 200, 360, 6), (0.8, 1)], [(0.8, 0.5), *_arc(0.45, 0.74, 0.26, 270, 90, 8), (0.8, 0.9)]],
    "ɑ": [_arc(0.4, 0.5, 0.4, 0, 360, 14), [(0.8, 0.1), (0.8, 1)]],
    "u": [[(0.1, 0), (0.1, 0.65), *_arc(0.45, 0.65, 0.35, 180, 0, 8)], [(0.8, 0), (0.8, 1)]],
    "y": [[(0, 0), (0.5, 0.6)], [(1, 0), (0.35, 1)]],
    "p": [[(0.1, 0.05), (0.1, 1)], _arc(0.45, 0.35, 0.33, 0, 360, 14)],
    "j": [[(0.6, 0.3), (0.6, 0.8), *_arc(0.35, 0.8, 0.25, 0, 150, 5)], [(0.6, 0), (0.6, 0.03)]],
    "ȷ": [[(0.7, 0), (0.7, 0.75), *_arc(0.45, 0.75, 0.25, 0, 170, 6)]],  # J without its bar
    "#": [[(0.3, 0), (0.2, 1)], [(0.75, 0), (0.65, 1)], [(0, 0.33), (1, 0.33)], [(0, 0.66), (1, 0.66)]],
    "=": [[(0, 0.35), (1, 0.35)], [(0, 0.65), (1, 0.65)]],
    "*": [[(0.5, 0), (0.5, 1)], [(0.05, 0.25), (0.95, 0.75)], [(0.95, 0.25), (0.05, 0.75)]],
    "&": [[(1, 1), (0.2, 0.35), *_arc(0.4, 0.2, 0.2, 180, 360, 6), (0.1, 0.75), *_arc(0.35, 0.8, 0.22, 180, 60, 6), (0.95, 0.5)]],
    "%": [[(0.9, 0), (0.1, 1)], _arc(0.2, 0.2, 0.16, 0, 360, 10), _arc(0.8, 0.8, 0.16, 0, 360, 10)],
}


def _pen(strokes, rng: np.random.Generator, size: int = 112) -> np.ndarray:
    slant = rng.uniform(-0.3, 0.3)
    jitter = [np.array(s, np.float64) + rng.normal(0, 0.02, (len(s), 2)) for s in strokes]
    for s in jitter:
        s[:, 0] += slant * (s[:, 1] - 0.5)
    xs = np.concatenate([s[:, 0] for s in jitter])
    ys = np.concatenate([s[:, 1] for s in jitter])
    side = max(np.ptp(xs), np.ptp(ys), 1e-6)
    unit = [[((x - xs.min()) / side, (y - ys.min()) / side) for x, y in s] for s in jitter]
    return draw_strokes(unit, (size, size), pen_width=size * rng.uniform(1 / 30, 1 / 8),
                        height_share=rng.uniform(0.45, 0.8), light_on_dark=rng.random() < 0.5)


def _scribble(rng: np.random.Generator) -> list:
    heading, speed = rng.uniform(0, 2 * math.pi), 0.06
    turn = rng.uniform(0.2, 0.9) * rng.choice([-1, 1])
    point, points = np.array([0.5, 0.5]), []
    for _ in range(int(rng.integers(25, 70))):
        heading += turn + rng.normal(0, 0.5)
        point = np.clip(point + speed * np.array([math.cos(heading), math.sin(heading)]), 0, 1)
        points.append(tuple(point))
    return [points]


def _zigzag(rng: np.random.Generator) -> list:
    """Straight strokes between 7 to 20 random points: too many turns for any digit."""
    return [[tuple(p) for p in rng.uniform(0, 1, (int(rng.integers(7, 21)), 2))]]


def _noise(rng: np.random.Generator, size: int = 112) -> np.ndarray:
    kind = int(rng.integers(5))
    if kind == 0:  # uniform grey noise
        return (rng.random((size, size)) * 255).astype(np.uint8)
    if kind == 1:  # sparse dots
        return np.where(rng.random((size, size)) < rng.uniform(0.005, 0.05), 0, 255).astype(np.uint8)
    if kind == 2:  # dense speckle
        return np.where(rng.random((size, size)) < rng.uniform(0.2, 0.6), 0, 255).astype(np.uint8)
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    if kind == 3:  # hatching
        step, width = int(rng.integers(6, 20)), int(rng.integers(1, 5))
        for k in range(-size, 2 * size, step):
            draw.line([(k, 0), (k + size * rng.uniform(-0.5, 0.5), size)], fill=0, width=width)
    else:  # a filled blob
        box = sorted(rng.uniform(5, size - 5, 2)), sorted(rng.uniform(5, size - 5, 2))
        draw.ellipse((box[0][0], box[1][0], box[0][1] + 10, box[1][1] + 10), fill=0)
    return np.asarray(image)


def as_training_image(canvas: np.ndarray) -> np.ndarray:
    """A drawn canvas prepared as `predict` prepares a user's image, as a 28 x 28 uint8 image:
    how every drawn training image (pen digits, not-digits, printed letters) is made. ImageError
    if it is blank after thresholding."""
    return np.uint8(np.rint(255 * to_mnist(to_ink(Image.fromarray(canvas)))))


def not_digit_images(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` prepared (28 x 28 uint8) images that are not digits: half pen letters and signs, a
    quarter scribbles (loops or zigzags), a quarter noise of five kinds. Images that prepare to
    nothing are skipped and drawn again."""
    out, letters = [], list(LETTERS.values())
    while len(out) < count:
        pick = rng.random()
        if pick < 0.5:
            canvas = _pen(letters[int(rng.integers(len(letters)))], rng)
        elif pick < 0.75:
            canvas = _pen(_scribble(rng) if pick < 0.625 else _zigzag(rng), rng)
        else:
            canvas = _noise(rng)
        try:
            out.append(as_training_image(canvas))
        except ImageError:  # blank after thresholding: not an image a user's "digit" would be
            continue
    return np.stack(out)
