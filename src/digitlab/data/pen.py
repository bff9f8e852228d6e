"""Real pen trajectories of handwritten digits (UNIPEN, in `pen-digits/`): read and checked.

Each digit is the movement of a pen, not an image: strokes in writing order, each a list of (x, y)
points in a unit box (the digit's longer side is 1), y downwards. `digitlab.images.strokes` draws
them the ways a person's digit reaches digitlab (the draw page's canvas, any pen width, either
colour scheme). `train.json` is for training and tuning; `dev.json`, written by other writers, only
for measuring.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.data.fetch import default_cache_dir
from digitlab.data.notdigits import NOT_A_DIGIT, as_training_image, not_digit_images
from digitlab.data.printed import printed_letters
from digitlab.errors import DataError
from digitlab.files import atomic_write, sha256_file
from digitlab.images.strokes import draw_strokes

PEN_FOLDER = "pen-digits"
SPLITS = ("train", "dev")
MAX_FILE_BYTES = 200_000_000  # a thousand times the shipped files: a hostile file is refused, not read


@dataclass(frozen=True)
class PenDigit:
    label: int
    site: str
    writer: str
    strokes: tuple[tuple[tuple[float, float], ...], ...]


def pen_digits_path(split: str, data_dir: str | os.PathLike | None = None) -> Path:
    """`<data_dir>/pen-digits/<split>.json`; data_dir defaults to $DIGITLAB_DATA."""
    if split not in SPLITS:
        raise DataError(f'"{split}" is not a split of the pen digits; choose one of {", ".join(SPLITS)}.')
    root = data_dir if data_dir is not None else os.environ.get("DIGITLAB_DATA")
    if not root:
        raise DataError("the pen digits are read from DATA/pen-digits/; pass data_dir or set DIGITLAB_DATA.")
    return Path(root) / PEN_FOLDER / f"{split}.json"


def load_pen_digits(split_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[PenDigit]:
    """The digits of a split ("train", "dev") or of a JSON file in the same layout, checked: every
    problem is a DataError naming the file, the digit's index and the field."""
    path = Path(split_or_path) if str(split_or_path) not in SPLITS else pen_digits_path(str(split_or_path), data_dir)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DataError(f"{path}: {path.stat().st_size:,} bytes is more than the {MAX_FILE_BYTES:,} a pen-digits "
                            "file may have.")
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; the pen digits come with the shared data (pen-digits/).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable JSON file ({e}).") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of digits, found {type(records).__name__}.")
    return [_digit(record, f"{path}: digit {i}") for i, record in enumerate(records)]


def _digit(record, where: str) -> PenDigit:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object, found {type(record).__name__}.")
    label = record.get("label")
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label <= 9:
        raise DataError(f"{where}: label must be an integer 0-9, found {label!r}.")
    strokes = record.get("strokes")
    if not isinstance(strokes, list) or not strokes:
        raise DataError(f"{where}: strokes must be a non-empty list of strokes.")
    out = []
    for j, stroke in enumerate(strokes):
        if not isinstance(stroke, list) or not stroke:
            raise DataError(f"{where}: stroke {j} must be a non-empty list of [x, y] points.")
        points = []
        for point in stroke:
            if (not isinstance(point, list) or len(point) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and -0.5 <= v <= 1.5
                               for v in point)):
                raise DataError(f"{where}: stroke {j} has a point that is not [x, y] in the unit box: {point!r:.60}.")
            points.append((float(point[0]), float(point[1])))
        out.append(tuple(points))
    site, writer = record.get("site", ""), record.get("writer", "")
    if not isinstance(site, str) or not isinstance(writer, str):
        raise DataError(f"{where}: site and writer must be strings.")
    return PenDigit(label, site, writer, tuple(out))


# ---- the pen digits as training images: the "mnist+pen" data set ----

MNIST_PEN = "mnist+pen"
MNIST_PEN_DESCRIPTION = ("MNIST's 60,000 training digits plus pen-digits' train.json (4,064 digits by 141 writers) drawn "
                         "eight ways each as a person's pen would, and 10,000 images that are not digits (pen and "
                         "printed letters, scribbles, noise), prepared like MNIST; MNIST's 10,000 test digits")
MNIST_PEN_CLASSES = (*(str(d) for d in range(10)), NOT_A_DIGIT)
RENDER_VERSION = 7  # part of the cache file's name: a change to what is drawn makes a new file
# (5: preparation takes a box's or form cell's lines out of one digit: 2 of the 32,512 drawn digits
# and 10 of the 8,000 not-digits changed; 6: and those of a box it runs out of on every side: 6
# not-digits changed; 7: 2,000 printed letters after the not-digits, docs/presets.md)
# Each train.json digit drawn this many ways. 8, not 4, since 2026-12-06: with the reader's recipe
# and seed, MNIST test 99.37 -> 99.42%, dev.json page answers shown 98.4 -> 98.7%, thick pen 97.9 ->
# 98.4%, small and off-centre 97.9 -> 98.2%; 20 of 26 font capitals unsure instead of 21.
# Sixteen was tried too (with the evening's not-digits): worse on every row, MNIST 99.41%, page 98.4%,
# 1,200 dev numbers 90.1% (docs/presets.md).
RENDERINGS = 8
NOT_DIGITS = 8000  # about a twelfth of the training images
PRINTED = 2000  # printed letters (digitlab.data.printed), "not a digit" too


def pen_variations(digit: PenDigit, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """`count` 28 x 28 uint8 images of one pen digit, as people's pens would draw it: a random pen
    width (thin to thick), slant, size and position, a slight wobble of the trajectory, sometimes a
    broken stroke, either colour scheme; each drawn on a canvas and prepared the way `predict`
    prepares a user's image (ink found, scaled into 20 x 20, centred by mass)."""
    out = []
    for _ in range(count):
        slant = rng.uniform(-0.35, 0.35)
        wobble = rng.normal(0, 0.008, 2)
        strokes = []
        for stroke in digit.strokes:
            pts = np.array(stroke, np.float64)
            pts[:, 0] += slant * (pts[:, 1] - 0.5)
            pts += wobble * np.sin(np.linspace(0, rng.uniform(2, 8), len(pts)))[:, None]
            if len(pts) > 8 and rng.random() < 0.15:  # the pen lifted for a moment
                cut = int(rng.integers(2, len(pts) - 4))
                strokes += [pts[:cut], pts[cut + 2 :]]
            else:
                strokes.append(pts)
        strokes = [[tuple(p) for p in s] for s in strokes]
        size = 112  # the page's 280-pixel canvas at 2/5: the same 28 x 28 after preparation, 6x sooner
        canvas = draw_strokes(strokes, (size, size), pen_width=size * rng.uniform(1 / 30, 1 / 8),
                              height_share=rng.uniform(0.45, 0.8),
                              centre=tuple(size / 2 + rng.uniform(-0.1, 0.1, 2) * size), light_on_dark=rng.random() < 0.5)
        out.append(as_training_image(canvas))
    return out


def pen_training_split(data_dir: str | os.PathLike | None = None, *, renderings: int = RENDERINGS, seed: int = 0,
                       not_digits: int = NOT_DIGITS, printed: int = PRINTED,
                       cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """train.json's digits drawn `renderings` ways each, then `not_digits` images of the "not a
    digit" class (label 10, `digitlab.data.notdigits`) and `printed` printed letters of that class
    too (`digitlab.data.printed`): (n, 28, 28) uint8 images and (n,) labels.

    Drawing and preparing them takes a minute or two, so the result is kept in the cache folder
    under a name made of train.json's SHA-256, RENDER_VERSION, the three counts and `seed`: a changed
    file or renderer makes a new one, and the same arguments always give the same images."""
    path = pen_digits_path("train", data_dir)
    if not path.is_file():
        raise DataError(f"{path}: no such file; the pen digits come with the shared data (pen-digits/).")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / f"pen-train-{sha256_file(path)[:16]}-v{RENDER_VERSION}-r{renderings}-n{not_digits}-p{printed}-s{seed}.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as f:
                x, y = f["x"], f["y"]
            if x.dtype == np.uint8 and x.ndim == 3 and x.shape[1:] == (28, 28) and y.shape == (len(x),) \
                    and y.dtype == np.uint8 and int(y.max(initial=0)) <= 10:
                return x, y
        except (OSError, ValueError, KeyError):
            pass  # damaged: drawn again below and replaced
    digits = load_pen_digits(path)
    rng = np.random.default_rng(seed)
    x = np.stack([img for d in digits for img in pen_variations(d, rng, renderings)])
    y = np.repeat(np.array([d.label for d in digits], np.uint8), renderings)
    if not_digits:
        x = np.concatenate([x, not_digit_images(not_digits, rng)])
        y = np.concatenate([y, np.full(not_digits, MNIST_PEN_CLASSES.index(NOT_A_DIGIT), np.uint8)])
    if printed:
        x = np.concatenate([x, printed_letters(printed, rng)])
        y = np.concatenate([y, np.full(printed, MNIST_PEN_CLASSES.index(NOT_A_DIGIT), np.uint8)])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_write(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, x=x, y=y)
    except OSError:
        pass  # a cache that cannot be written costs time next run, not this run's result
    return x, y
