"""MNIST-style preparation: an ink map -> the 28 x 28 image the networks were trained on.

MNIST's recipe (LeCun et al.): the digit's bounding box scaled to fit a 20 x 20 box, aspect ratio
kept, anti-aliased to grey levels, then placed in a 28 x 28 frame with its centre of mass at the
centre. Networks trained on MNIST only work on digits prepared the same way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitlab.errors import ImageError
from digitlab.images.components import (
    center_of_mass,
    dilate_cross,
    large_pieces,
    pieces,
    shift_whole,
)
from digitlab.images.rulings import cell_lines

BOX = 20
FRAME = 28
SPECK_SHARE = 0.05  # ink components smaller than this share of the largest are noise
FAINT_GROWTH = 2.0  # ink_mask's faint ink may at most double a piece of stroke


def ink_mask(ink: np.ndarray, faint: float = 1.0) -> np.ndarray:
    """Where the stroke is: ink above Otsu's threshold, without specks of noise.

    With `faint` under 1, a hysteresis threshold (as Canny's): ink above `faint` times the threshold
    is stroke too where it joins ink above the threshold, so a faint stretch of a stroke does not
    break a digit into pieces, while faint ink on its own (a shadow, a smudge) stays out."""
    if ink.size == 0 or float(ink.max()) < 0.05:
        return np.zeros(ink.shape, bool)
    floor = 0.05 * float(ink.max())
    level = max(otsu(ink), floor)
    if faint >= 1:
        return large_pieces(ink > level, SPECK_SHARE)
    strong = ink > level
    labels, boxes = pieces(ink > max(faint * level, floor))
    # A piece of faint ink is kept where it joins stroke, unless it is mostly faint: then it is a
    # shadow or a smudge that a stroke runs into, and only its stroke is kept.
    faint_size = np.bincount(labels.ravel(), minlength=len(boxes) + 1)
    strong_size = np.bincount(labels[strong], minlength=len(boxes) + 1)
    joined = (strong_size > 0) & (faint_size <= FAINT_GROWTH * strong_size)  # label 0, no ink, has no stroke
    return large_pieces(joined[labels] | strong, SPECK_SHARE)


def digit_mask(mask: np.ndarray) -> np.ndarray:
    """One digit's ink without the lines of a box or form cell around it (`rulings.cell_lines`)
    and the specks of them left."""
    lines = cell_lines(mask)
    return large_pieces(mask & ~lines, SPECK_SHARE) if lines.any() else mask


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut that best separates the two classes of a histogram."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, float(values.max()) or 1.0))
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[int(np.argmax(between))])


def to_mnist(ink: np.ndarray, *, name: str = "image", mask: np.ndarray | None = None) -> np.ndarray:
    """A (28, 28) float32 image in [0, 1] prepared like MNIST from an (h, w) ink map."""
    if mask is None:
        mask = digit_mask(ink_mask(ink))
    if not mask.any():
        raise blank_error(name)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Keep the anti-aliased edges next to the stroke, drop everything else (specks, shadows). The
    # mask is empty outside its box, so dilating the box with a 2-pixel margin gives the same pixels
    # as dilating the whole image, at the cost of the digit's size, not the page's.
    t0, l0 = max(top - 2, 0), max(left - 2, 0)
    near = dilate_cross(mask[t0 : bottom + 2, l0 : right + 2], iterations=2)
    near = near[top - t0 : bottom - t0, left - l0 : right - l0]
    crop = np.where(near, ink[top:bottom, left:right], 0)
    strong = np.percentile(crop[mask[top:bottom, left:right]], 90)
    return centred(np.clip(crop / max(strong, 1e-6), 0, 1).astype(np.float32))


# A prepared digit wider than this many times its height is likely several digits: none of MNIST's
# 10,000 test digits is over 2.0 (31 over 1.6); "2104" side by side is 5.0.
WIDE = 2.5


def several_digits_hints(prepared: np.ndarray) -> list[str]:
    """For each prepared image (n, 28, 28), a hint to read a number instead where its ink is much
    wider than tall and in several pieces, else "" (`predict` of "90210" answered "not a digit", or a
    confident "5", with no word of `read`; one stroke, a dash or a "1" lying down, gets none). For
    the whole stack at once: it is on every prediction's path."""
    ink = prepared > 0.15
    height, width = _span(ink.any(axis=2)), _span(ink.any(axis=1))
    wide = (height > 0) & (width >= WIDE * height)
    return [f"The ink is {width[i] / height[i]:.1f} times as wide as tall, in pieces: if it is several digits, "
            "read them as a number (digitlab read; on the draw page, \"A whole number\")."
            if wide[i] and len(pieces(ink[i])[1]) >= 2 else "" for i in range(len(prepared))]


def _span(any_ink: np.ndarray) -> np.ndarray:
    """Per row of (n, k) booleans, from the first True to the last, in cells (0 for none)."""
    first, last = any_ink.argmax(axis=1), any_ink.shape[1] - 1 - any_ink[:, ::-1].argmax(axis=1)
    return np.where(any_ink.any(axis=1), last - first + 1, 0)


def blank_error(name: str) -> ImageError:
    return ImageError(f"{name}: the image is blank after thresholding; no ink stroke found. Draw darker or larger strokes.")


def centred(crop: np.ndarray) -> np.ndarray:
    """The 28 x 28 frame of a digit's crop (float32 in [0, 1], the box around its ink): scaled to
    fit BOX x BOX, aspect ratio kept, its centre of mass moved to the frame's centre."""
    return mass_centred(boxed(crop)[None])[0]


def boxed(crop: np.ndarray) -> np.ndarray:
    """A 28 x 28 frame with `crop` scaled into its central BOX x BOX, aspect ratio kept."""
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(crop, mode="F").resize(size, resample), dtype=np.float32)
    frame = np.zeros((FRAME, FRAME), np.float32)
    y0, x0 = (FRAME - size[1]) // 2, (FRAME - size[0]) // 2
    frame[y0 : y0 + size[1], x0 : x0 + size[0]] = np.clip(small, 0, 1)
    return frame


def mass_centred(frames: np.ndarray) -> np.ndarray:
    """Each 28 x 28 frame of a stack (n, 28, 28) moved by whole pixels to put its centre of mass at
    (14, 14), as MNIST's are."""
    cy, cx = center_of_mass(frames)
    moved = [shift_whole(frame, int(round(FRAME / 2 - y)), int(round(FRAME / 2 - x)))
             for frame, y, x in zip(frames, cy.tolist(), cx.tolist())]
    return np.clip(np.stack(moved), 0, 1).astype(np.float32)
