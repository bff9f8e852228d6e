"""Printed letters, for the reader's "not a digit" class: typed text reaches digitlab too.

A reader whose not-digits are all drawn with a pen read a printed "A" as a 4, a "U" or "D" as a 0
and an "L" as a 1, sure of each. Each image here is one letter of a font that matplotlib ships
(STIX and Computer Modern, nine faces: serif, sans, typewriter, bold, italic), drawn at a random
size, weight, tilt and place, in either colour scheme, then prepared as `predict` prepares any
image. Letters that a font or a hand makes like a digit (B, G, I, O, S, Z and b, g, l, o, q, s, z)
are left out: calling those "not a digit" would call some digits that too. Printed digits among
the training images (30% of the glyphs, as their own classes) were tried and left out: MNIST test
fell to 99.28-99.39% in three runs (99.41% and 99.42% in two runs without them).

These fonts were chosen because they ship with a dependency, so `digitlab train --model reader`
draws the same images on any machine, and because `benchmarks/handwriting.py` measures letters and
printed digits in other fonts (Pillow's own and DejaVu): what it measures is a font never trained on.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitlab.data.notdigits import as_training_image
from digitlab.errors import DataError, ImageError

DIGIT_SHAPED = set("BGIOSZbgloqsz")  # also what benchmarks/handwriting.py leaves out of its letters
LETTERS = "".join(ch for ch in string.ascii_letters if ch not in DIGIT_SHAPED)
FONT_FILES = ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
              "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")


def font_paths() -> list[Path]:
    """The font files, from matplotlib's own data folder (a dependency of digitlab)."""
    import matplotlib  # here, not at the top: reading pen digits needs no plotting library

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [folder / name for name in FONT_FILES]


def _glyph(ch: str, path: Path, rng: np.random.Generator, loaded: dict, size: int = 112) -> np.ndarray:
    key = (path, int(rng.integers(40, 90)))  # a font file and a size in pixels
    if key not in loaded:
        loaded[key] = ImageFont.truetype(str(path), key[1])
    font = loaded[key]
    image = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(image).text((size, size), ch, fill=255, font=font, anchor="mm",
                               stroke_width=int(rng.integers(0, 3)) if rng.random() < 0.4 else 0, stroke_fill=255)
    image = image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR,
                         center=tuple(size + rng.uniform(-10, 10, 2)))
    half = size // 2
    ink = np.asarray(image)[half: half + size, half: half + size]
    return ink if rng.random() < 0.5 else 255 - ink


def printed_letters(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` prepared (28 x 28 uint8) printed letters, none shaped like a digit."""
    fonts = font_paths()
    missing = [str(p) for p in fonts if not p.is_file()]
    if missing:
        raise DataError(f"matplotlib's fonts are missing ({', '.join(missing)}); reinstall matplotlib.")
    out, loaded = [], {}  # each (font, size) read once
    while len(out) < count:
        canvas = _glyph(LETTERS[int(rng.integers(len(LETTERS)))], fonts[int(rng.integers(len(fonts)))], rng, loaded)
        try:
            out.append(as_training_image(canvas))
        except ImageError:  # cut off by the tilt or the crop: drawn again
            continue
    return np.stack(out)
