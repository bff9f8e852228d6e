"""Draw pen trajectories as the images people's digits reach digitlab as: the draw page's canvas.

A trajectory is a list of strokes, each a list of (x, y) points in a unit box (y downwards), as
`digitlab.data.pen` reads them. The page draws on a 280 x 280 canvas with a round pen 20 pixels
wide (a fourteenth of the height), black on white; `draw_strokes` does the same with Pillow, at
four times the size and then reduced, for the canvas's anti-aliased edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4
Strokes = Sequence[Sequence[tuple[float, float]]]


def draw_strokes(strokes: Strokes, size: tuple[int, int] = (280, 280), *, pen_width: float | None = None,
                 height_share: float = 0.7, centre: tuple[float, float] | None = None,
                 light_on_dark: bool = False) -> np.ndarray:
    """A (height, width) uint8 image of the strokes: dark ink on white, or light on black.

    The trajectory's unit box is scaled so that the digit's longer side is `height_share` of the
    image's height, centred at `centre` (pixels; the image's centre by default). `pen_width` in
    pixels, by default the page's: a fourteenth of the height."""
    width, height = size
    pen = (pen_width if pen_width is not None else height / 14) * SUPERSAMPLE
    scale = height_share * height * SUPERSAMPLE
    points = [p for stroke in strokes for p in stroke]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mid = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)

    def at(p):
        return ((p[0] - mid[0]) * scale + cx * SUPERSAMPLE, (p[1] - mid[1]) * scale + cy * SUPERSAMPLE)

    r = pen / 2
    for stroke in strokes:
        xy = [at(p) for p in stroke]
        if len(xy) > 1:
            draw.line(xy, fill=255, width=max(1, round(pen)))
        for x, y in xy:  # round caps and joins, as the page's lineCap and lineJoin
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    ink = np.asarray(canvas.resize(size, Image.Resampling.BOX))
    return ink if light_on_dark else 255 - ink


def draw_number(trajectories: Sequence[Strokes], rng: np.random.Generator, size: tuple[int, int] = (720, 240),
                light_on_dark: bool = False) -> np.ndarray:
    """Several trajectories written side by side on one canvas (the page's number mode), each with
    its own small jitter of size and height; spaced so that neighbours do not touch."""
    width, height = size
    n = len(trajectories)
    slot = width / (n + 0.5)
    share = min(0.6, slot / height * 0.85)
    ink = np.zeros((height, width), np.uint8)
    for i, strokes in enumerate(trajectories):
        s = share * rng.uniform(0.9, 1.05)
        centre = (slot * (i + 0.75), height / 2 + rng.uniform(-0.05, 0.05) * height)
        one = 255 - draw_strokes(strokes, size, pen_width=height / 14 * 0.8, height_share=s, centre=centre)
        ink = np.maximum(ink, one)
    return ink if light_on_dark else 255 - ink
