"""Split an image of a handwritten number into its digits, left to right.

Connected components of the ink are the first guess. Two repairs make them digits: pieces that
stand over one another (a "5" whose top bar lifted off the paper) are merged, and a component that
may hold several touching digits can be cut into k pieces where the least ink crosses, near where
the cuts are expected (`split`); which k is right is for the recogniser to judge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from digitlab.errors import ImageError
from digitlab.images.components import pieces

# Components at least this wide for the number's height may be touching digits.
MAY_TOUCH_ASPECT = 0.75
# The narrowest a digit in a touching run is, for the number's height: bounds the pieces tried.
MIN_DIGIT_ASPECT = 0.4
OVERLAP_TO_MERGE = 0.5  # horizontal overlap, as a share of the narrower piece
# Side-by-side pieces of one broken digit sit close: a blank gap wider than this, for the number's
# height, between them means two digits (tuned on numbers of train.json's pen digits, where a "1"
# was read merged with its neighbour into one confident digit; BENCHMARKS.md, issue 25).
MAX_GAP_IN_DIGIT = 0.35
# The most separate pieces of ink a number may have: 16 digits of up to 3 pieces each. The work
# grows with the pieces (every run of neighbours is a candidate digit), so a page of dots or lines
# is refused at once rather than costing minutes; a real number has a few dozen at most.
MAX_PIECES = 48
MAX_GROUP = 3  # a digit may be broken into at most this many side-by-side pieces
MAX_BROKEN_WIDTH = 1.6  # ... spanning at most this many times the number's height
# Side-by-side pieces each at least this share of the number's height are digits of their own, not
# the pieces of one broken digit (whose parts, a "5"'s lifted bar, a "4"'s stem beside its arm, are
# shorter). Without it, a printed number's close-set digits were merged in pairs the model read as
# one digit it was sure enough of: "41" as a "4" at 78%, two digits at 98% losing by DIGIT_COST.
# Chosen on printed numbers in the Liberation fonts (76% -> 98% whole; 0.6-0.95 about as good, 0.9
# for a digit a little shorter than the rest), with numbers of train.json's pen digits and MNIST's
# training digits unchanged (96.3% and 95.8%; at 0.6, 95.7% and 95.8%). Only for a group at least as
# wide as the number is tall: a "0" drawn as two full-height arcs, "( )", is narrower, and one digit.
WHOLE_DIGIT_HEIGHT = 0.9


@dataclass
class Segment:
    """One digit's place: a bounding box (top, left, bottom, right) and its pixels."""

    box: tuple[int, int, int, int]
    mask: np.ndarray  # full-image boolean mask of this digit's ink


def segment(mask: np.ndarray, name: str = "image") -> list[Segment]:
    """The connected pieces of ink, stacked pieces merged, ordered left to right.

    Raises ImageError for more than MAX_PIECES pieces, before any work that grows with them."""
    labels, boxes = pieces(mask)
    n = len(boxes)
    if n == 0:
        return []
    if n > MAX_PIECES:
        raise ImageError(f"{name}: {n} separate pieces of ink, more than the {MAX_PIECES} a number of up to 16 "
                         "digits has; crop the image to the number.")
    groups = [[i + 1] for i in range(n)]
    groups, boxes = _merge_stacked(groups, boxes)
    segments = [Segment(box, np.isin(labels, ids)) for ids, box in zip(groups, boxes)]
    return sorted(segments, key=lambda s: (s.box[1] + s.box[3]) / 2)


def split_counts(segment: Segment, height: int) -> range:
    """How many touching digits a piece might hold, given the number's height: 1 if narrow."""
    top, left, bottom, right = segment.box
    width = right - left
    if width < MAY_TOUCH_ASPECT * height:
        return range(1, 2)
    return range(1, max(2, min(5, int(width / (MIN_DIGIT_ASPECT * height)))) + 1)


def split(segment: Segment, k: int) -> list[Segment]:
    """The piece cut into k digits (itself when k is 1)."""
    return [segment] if k == 1 else _split(segment.mask, segment.box, k)


def widest_gap(boxes) -> int:
    """The widest blank run of columns between boxes (top, left, bottom, right) side by side; 0 or
    less when their columns overlap or touch."""
    boxes = sorted(boxes, key=lambda b: b[1])
    right, gap = boxes[0][3], -(10**9)
    for b in boxes[1:]:
        gap, right = max(gap, b[1] - right), max(right, b[3])
    return gap


def _merge_stacked(groups, boxes):
    """Merge pieces that overlap horizontally by at least half the narrower one."""
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[3], b[3]) - max(a[1], b[1])
                narrower = min(a[3] - a[1], b[3] - b[1])
                if overlap >= OVERLAP_TO_MERGE * narrower:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    groups[i] = groups[i] + groups[j]
                    del boxes[j], groups[j]
                    merged = True
                    break
            if merged:
                break
    return groups, boxes


def _split(part: np.ndarray, box, k: int) -> list[Segment]:
    """Cut a run of k touching digits at the columns with the least ink near the expected cuts."""
    top, left, bottom, right = box
    profile = part[top:bottom, left:right].sum(axis=0).astype(np.float64)
    width = right - left
    cuts = [0]
    for j in range(1, k):
        expected = j * width / k
        lo, hi = int(expected - 0.25 * width / k), int(expected + 0.25 * width / k) + 1
        lo, hi = max(lo, cuts[-1] + 1), min(hi, width - 1)
        cuts.append(lo + int(np.argmin(profile[lo:hi])) if hi > lo else int(expected))
    cuts.append(width)
    segments = []
    for c0, c1 in zip(cuts[:-1], cuts[1:]):
        piece = np.zeros_like(part)
        piece[:, left + c0 : left + c1] = part[:, left + c0 : left + c1]
        rows = np.flatnonzero(piece.any(axis=1))
        cols = np.flatnonzero(piece.any(axis=0))
        if len(rows):
            segments.append(Segment((rows[0], cols[0], rows[-1] + 1, cols[-1] + 1), piece))
    return segments


def digit_candidates(pieces: list[Segment]) -> Iterator[tuple[tuple[int, int, int], list[Segment]]]:
    """((start, end, k), pieces[start:end] merged and cut into k digit segments), by start."""
    height = int(np.median([p.box[2] - p.box[0] for p in pieces]))
    for start in range(len(pieces)):
        for end in range(start + 1, min(start + MAX_GROUP, len(pieces)) + 1):
            boxes = [g.box for g in pieces[start:end]]
            merged = Segment(
                (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)),
                np.logical_or.reduce([g.mask for g in pieces[start:end]]),
            )
            if end - start > 1:
                width = merged.box[3] - merged.box[1]
                # Too wide to be one broken digit. 1.6 heights, not 1.2: a pen's "5" whose bar lifts off
                # to the right is that wide (dev.json numbers: 86% whole, against 83%; MNIST's unchanged).
                if width > MAX_BROKEN_WIDTH * height:
                    break
                if widest_gap(boxes) > MAX_GAP_IN_DIGIT * height:
                    continue  # pieces this far apart are two digits (a wider group keeps the gap, unless a piece fills it)
                if min(b[2] - b[0] for b in boxes) >= WHOLE_DIGIT_HEIGHT * height and width >= height:
                    continue  # each piece as tall as the number, and wide together: whole digits side by side
            for k in split_counts(merged, height):
                parts = [s for s in split(merged, k) if s.mask.any()]
                if parts:
                    yield (start, end, k), parts
