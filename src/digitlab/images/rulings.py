"""Form lines around a written number: underlines, ruled paper, a frame, boxes; found and taken out.

A number written on a form sits on a line or in boxes, and a line that runs under or around its
digits joins them into one piece of ink: `read` saw a single shape and answered "?". Form lines
are long and straight and digits' strokes are not, so before the number is cut into digits:

- a straight run of ink (within about 5 degrees of level) that spans most of the ink's width, is
  RULE_LENGTH times as long as the writing is tall and thinner than its strokes (RULE_THIN) is a
  rule, and its pixels are taken out (a stroke that crossed it keeps a gap of the line and a row
  either side, which `segment` merges back);
- a plumb line that runs from one such rule to another (the sides of a frame or of a row of
  boxes) goes with them, and a digit that touched it stays;
- a piece of ink that holds a digit on four sides and is made of straight lines across its whole
  box (a box drawn around a digit, a row of boxes, a frame) goes too.

One digit (`predict`) has lines of its own: a box drawn around it that it runs into, the lines of
the form cell it was cut from, a line under it. `cell_lines` finds those: straight runs, level or
plumb, across EDGE_SPAN of the ink and at least MIN_LINE pixels long, RULE_THIN as thick as the
digit's strokes (PEN_QUANTILE of their width) or thinner, a level one beside the digit rather than
through it (ONE_SIDE); if they leave less than REST_SHARE of the ink, they are the drawing and
stay. A digit that runs out of a box on every side leaves the box's lines shorter than EDGE_SPAN:
four straight runs of BOX_SPAN that close a box, at least THIN_SIDES of them thin, are its lines
too (unless the pieces left make a box as well), and of them only the thin pixels go (a stroke
may run along a side). `remove_rulings` applies it last to each piece of ink: a box a digit runs
into, or a row of boxes joined by the digits that touch them.

Hand-written rather than a Hough transform (scikit-image): axis-near lines are all a form has,
and the import would cost a cold `read` more than this whole step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from digitlab.images.components import dilate_cross, pieces, runs

RULE_SPAN = 0.75  # a rule spans at least this share of the ink's width ...
RULE_LENGTH = 1.5  # ... and is at least this many times as long as the writing left is tall ...
RULE_THIN = 0.6  # ... and at most this many times as thick as their strokes (a pen's stroke is no rule)
TILTS = np.radians(np.arange(-5.25, 5.26, 0.375))  # degrees off level a rule may run (a scan, a photo)
POOL = 8  # columns looked at as one while looking for rules
MAX_BOXES = 20  # a box a digit and a frame: a number has at most 16 digits
MAX_PIECES = 200  # more pieces of ink than a number has (`segment` refuses 48): no boxes looked for
SIDE_SPAN = 0.9  # a side of a frame or box runs this share of the way from rule to rule ...
SIDE_THICK = 1.5  # ... and is at most this many times as thick as the rules
BOX_STRAIGHT = 0.9  # a box: at least this share of its ink on straight lines ...
BOXED_HEIGHT = 0.4  # ... around a piece at least this share of its height (a digit, not a dot)
EDGE_SPAN = 0.85  # a line of one digit's box or cell runs this share of the ink's width or height ...
MIN_LINE = 48  # ... and at least this many pixels: in a smaller image a line and a stroke look alike ...
REST_SHARE = 0.2  # ... and leaves this share of the ink (else the lines are the drawing: a "1", a "+")
ONE_SIDE = 0.1  # ... and, level, has at most this share of the ink on one side (it is beside the digit)
BOX_SPAN = 0.5  # the four lines of a closed box a digit runs out of on every side run this share ...
BOX_MEET = 0.05  # ... and reach its corners within this share of the ink's size (and POOL pixels)
THIN_SIDES = 3  # ... at least this many of them thin (a stroke may run along the fourth) ...
MAX_SIDES = 8  # straight pieces each way looked at for a box (a form's cell has 2, a comb a few)
PEN_QUANTILE = 15  # a digit's strokes are as wide as this percentile of its ink's runs across: MNIST's
# blots and thin tails (a "9" blown up 4x) keep their tails; at the median, 9 of 2,000 lost ink


def remove_rulings(mask: np.ndarray) -> np.ndarray:
    """The ink mask without its form lines (see the module's docstring); unchanged if it has none."""
    if not mask.any():
        return mask
    cols = np.flatnonzero(mask.any(axis=0))
    span = cols[-1] - cols[0] + 1
    rules = _level_runs(mask, max(RULE_SPAN * span, 8))
    if rules.any():
        rest = mask & ~rules
        rows = np.flatnonzero(rest.any(axis=1))  # how tall the writing is, without the rules
        labels, boxes = pieces(rest)
        if (len(rows) and 0 < len(boxes) <= MAX_PIECES
                and _rule_extent(rules) >= RULE_LENGTH * (rows[-1] - rows[0] + 1)
                and _thickness(rules) <= RULE_THIN * _pen(labels, boxes)):
            mask = rest & ~_between(labels, boxes, rules)
    mask = mask & ~_boxes(mask)
    return mask & ~_boxed_digits(mask)


def _boxed_digits(mask: np.ndarray) -> np.ndarray:
    """The lines of a box a digit runs into, a box of its own (`cell_lines` of each piece of ink)."""
    labels, boxes = pieces(mask)
    out = np.zeros(mask.shape, bool)
    if len(boxes) > MAX_PIECES:
        return out
    for i, (top, left, bottom, right) in enumerate(boxes, start=1):
        if max(bottom - top, right - left) >= MIN_LINE:
            out[top:bottom, left:right] |= cell_lines(labels[top:bottom, left:right] == i, bridge=True)
    return out


def cell_lines(mask: np.ndarray, *, bridge: bool = False) -> np.ndarray:
    """The pixels of the lines around one digit (a box, a form cell's sides, a line under it): the
    straight runs of ink, level or plumb within about 5 degrees, across EDGE_SPAN of the ink's width
    or height and at most RULE_THIN as thick as the digit's strokes. Thickness is the ink's run
    across the line: a digit's stroke a line finds in it is as thick as the stroke, and where a
    stroke crosses a line the ink stays. With `bridge`, a gap of a pixel or two does not break a
    line (boxes side by side in a row; `predict` leaves it off: noise would be lines)."""
    lines = np.zeros(mask.shape, bool)
    if max(mask.shape) < MIN_LINE or not mask.any():
        return lines
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    (down_start, down_end), (along_start, along_end) = (b.T for b in _run_bounds(mask.T)), _run_bounds(mask)
    down, along = down_end - down_start, along_end - along_start  # each pixel's run of ink down its column, along its row
    rough = min(float(np.median(down[mask])), float(np.median(along[mask])))  # the strokes' width, lines and all
    narrow = np.minimum(down, along)  # each pixel's shorter run: where a stroke is, its width
    found, sides = [], []  # (straight runs, across, flip, bounds): across EDGE_SPAN; of BOX_SPAN, for a box
    for across, span, flip, bounds in ((down, width, False, (down_start, down_end)), (along, height, True, (along_start, along_end))):
        # A line's thin pixels cover at least that many columns in a band as high as its tilt: few
        # digits' do (the search for lines costs milliseconds, this test a tenth of that).
        thin = mask & (across <= RULE_THIN * rough)
        most = _band_most(thin.T if flip else thin, span) if span >= MIN_LINE else 0
        if most < BOX_SPAN * span / 2:
            continue
        turned = mask.T if flip else mask
        searched = _bridged(turned) if bridge else turned
        for share, length, into in ((EDGE_SPAN, EDGE_SPAN * span, found), (BOX_SPAN, max(BOX_SPAN * span, MIN_LINE), sides)):
            if most >= share * span / 2:
                level = _level_runs(searched, length) & turned
                into.append((level.T if flip else level, across, flip, bounds))
    before = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])  # the ink in the rows before each
    candidates = [c for f in found for c in _straight_pieces(*f, before)]
    box = _closed_box([c for f in sides for c in _straight_pieces(*f, before)], RULE_THIN * rough, max(height, width))
    if not candidates and not box:
        return lines
    # The strokes' width: the ink's shorter run, down or along, where it is not straight (a sliver
    # a line cut off a slanted "1" has the whole stroke's runs), of the thinner strokes (PEN_QUANTILE);
    # in a digit made mostly of straight strokes (a "1", a "4" in a box), the thickest straight piece.
    rest = mask.copy()
    for level, *_ in found:
        rest &= ~level
    if rest.sum() >= REST_SHARE * mask.sum():
        pen = float(np.percentile(narrow[rest], PEN_QUANTILE))
    else:
        pen = max((c.thick for c in candidates), default=0.0)
    for c in candidates:
        if c.beside and c.thick <= RULE_THIN * pen:
            lines[c.where] |= c.line & ~c.crossed  # a stroke that crosses the line keeps its ink there
    # A box's sides are measured against the ink without them, straight strokes and all (the
    # strokes' width above counted its thin sides as strokes); with too little ink left, against that.
    strokes = mask.copy()
    for side in box:
        strokes[side.where] &= ~side.line
    if box and strokes.sum() >= REST_SHARE * mask.sum():
        pen = float(np.percentile(narrow[strokes], PEN_QUANTILE))
    for side in box:  # of a box's sides, the thin pixels: a stroke along a side or touching it stays
        lines[side.where] |= side.line & ~side.crossed & (side.across <= RULE_THIN * pen)
    if (mask & ~lines).sum() < REST_SHARE * mask.sum():
        return np.zeros(mask.shape, bool)  # lines and little else: the lines are the drawing
    return lines


@dataclass
class _Straight:
    """A straight piece of ink in one digit's image: a line of its box or cell, or a stroke."""

    where: tuple  # its box in the image (two slices)
    line: np.ndarray  # its pixels there
    crossed: np.ndarray  # of them, where a stroke runs on through it
    across: np.ndarray  # each pixel's run of ink across the line there
    thick: float  # the median of those runs on the line
    beside: bool  # level and beside the digit (little ink on one side), or plumb
    plumb: bool
    at: int  # where it runs: its row (level) or column (plumb)
    first: int  # where it starts and ends along itself
    last: int


def _straight_pieces(level: np.ndarray, across: np.ndarray, flip: bool, bounds, before: np.ndarray) -> list[_Straight]:
    """Each straight piece of `level` (level lines, or plumb ones with `flip`); `before`: the ink
    in the rows before each."""
    start, end = bounds
    labels, boxes = pieces(level)
    out = []
    for i, (top, left, bottom, right) in enumerate(boxes, start=1):
        line = labels[top:bottom, left:right] == i
        # A level line runs above or below the digit, not through it: little ink on one side (a
        # serif font's thin crossbar of a "4" has much on both). A plumb one may be the side two
        # boxes share, a digit on each side of it (fonts' plumb strokes are their thick ones).
        at, reach = top + int(np.median(np.nonzero(line)[0])), (bottom - top) // 2 + 1
        beside = flip or min(before[max(at - reach, 0)], before[-1] - before[min(at + reach + 1, len(before) - 1)]) \
            <= ONE_SIDE * before[-1]
        where = slice(top, bottom), slice(left, right)
        origin = left if flip else top  # the runs' bounds, from the piece's box
        crossed = (_crossing(line.T, (start[where] - origin).T, (end[where] - origin).T).T if flip
                   else _crossing(line, start[where] - origin, end[where] - origin))
        if flip:  # a plumb line runs at a column
            at = left + int(np.median(np.nonzero(line)[1]))
        first, last = (top, bottom - 1) if flip else (left, right - 1)
        runs_across = across[where]
        out.append(_Straight(where, line, crossed, runs_across, float(np.median(runs_across[line])), beside, flip,
                             at, first, last))
    return out


def _closed_box(straight: list[_Straight], thin: float, size: int) -> list[_Straight]:
    """Of the straight pieces, two level and two plumb ones that each run from one of the others
    to the other (within BOX_MEET of the ink's `size`), at least THIN_SIDES of them at most `thin`
    thick: a box a digit runs out of on every side, so that its lines span less than EDGE_SPAN of
    the ink (a side under a stroke that runs along it is as thick as the stroke). Its level sides
    need not be beside the digit: a stroke that runs on below the box's bottom is no crossbar.
    None if the pieces left make a box too (a square "0" drawn across a box: which is the digit?)."""
    box = _box_of(straight, thin, size, THIN_SIDES)
    others = [p for p in straight if all(p is not side for side in box)]
    return [] if box and _box_of(others, thin, size, 0) else box


def _box_of(straight: list[_Straight], thin: float, size: int, fewest_thin: int) -> list[_Straight]:
    """`_closed_box`'s box with at least `fewest_thin` thin sides: the one with the most, then the largest."""
    level, plumb = (sorted(sorted((p for p in straight if p.plumb == way), key=lambda p: p.first - p.last)[:MAX_SIDES],
                           key=lambda p: p.at) for way in (False, True))  # the longest each way, in order
    near = BOX_MEET * size + POOL
    best, most = [], (fewest_thin, 0)
    for i, top in enumerate(level):
        for bottom in level[i + 1:]:
            for j, left in enumerate(plumb):
                for right in plumb[j + 1:]:
                    sides = [top, bottom, left, right]
                    score = (sum(p.thick <= thin for p in sides), (bottom.at - top.at) * (right.at - left.at))
                    if (bottom.at - top.at >= MIN_LINE and right.at - left.at >= MIN_LINE and score >= most
                            and all(p.first <= left.at + near and p.last >= right.at - near for p in (top, bottom))
                            and all(p.first <= top.at + near and p.last >= bottom.at - near for p in (left, right))):
                        best, most = sides, score
    return best


def _band_most(mask: np.ndarray, span: float) -> int:
    """The most columns with a pixel of the mask in one band of rows: a band as high as a line
    `span` long rises at the steepest of TILTS, and a few rows more."""
    high = int(math.ceil(span * math.tan(float(np.abs(TILTS).max())))) + 3
    counts = np.concatenate([np.zeros((1, mask.shape[1]), np.int32), np.cumsum(mask, axis=0, dtype=np.int32)])
    high = min(high, len(mask))
    return int(((counts[high:] - counts[:-high]) > 0).sum(axis=1).max())


def _run_bounds(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel of ink, where its horizontal run of ink starts and ends (one past; 0 off the ink)."""
    rows, starts, ends = runs(mask)
    n = ends - starts
    start, end = np.zeros(mask.shape, np.int32), np.zeros(mask.shape, np.int32)
    first = np.repeat(np.cumsum(n) - n, n)  # each pixel's run's first place in the flat list
    where = np.repeat(rows, n), np.repeat(starts, n) + np.arange(int(n.sum())) - first
    start[where], end[where] = np.repeat(starts, n), np.repeat(ends, n)
    return start, end


def _bridged(mask: np.ndarray) -> np.ndarray:
    """The mask with gaps of one or two pixels along its rows filled: a line broken by a scan, or
    where two boxes side by side almost meet, is one line."""
    out = mask.copy()
    out[:, 1:-1] |= mask[:, :-2] & mask[:, 2:]
    out[:, 1:-2] |= mask[:, :-3] & mask[:, 3:]
    out[:, 2:-1] |= mask[:, :-3] & mask[:, 3:]
    return out


def _crossing(line: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The pixels of a level line (in its box) where the ink runs on through it, down its columns
    from `start` to `end`, at least two pixels past it on both sides: a stroke that crosses it."""
    at = np.arange(line.shape[0])[:, None]
    top = np.where(line, at, line.shape[0]).min(axis=0)
    bottom = np.where(line, at, -1).max(axis=0)
    return line & (start < top - 1) & (end > bottom + 2)


def _level_runs(mask: np.ndarray, length: float, pool: int = POOL) -> np.ndarray:
    """Pixels of the mask on straight runs at least `length` long, level or tilted by one of TILTS:
    each tilt shears the columns level (a cell is ink give or take a row, for the tilts between). The
    columns are pooled `pool` at a time first: a rule is long, and found as well at a fraction of the work."""
    h, w = mask.shape
    cells = -(-w // pool)
    # A cell is ink where all its columns are, give or take a row: a gap between two digits' strokes
    # breaks a run as it does unpooled, and a thin line stepping a row inside a cell does not.
    thick = mask.copy()
    thick[1:] |= mask[:-1]
    thick[:-1] |= mask[1:]
    pooled = np.zeros((h, cells * pool), bool)
    pooled[:, :w] = thick
    pooled = pooled.reshape(h, cells, pool).all(axis=2)
    x = (np.arange(cells) - (cells - 1) / 2) * pool  # each cell's centre, from the middle
    pad = int(math.ceil(w / 2 * math.tan(float(np.abs(TILTS).max())))) + 2
    found = np.zeros((h, cells), bool)
    for tilt in TILTS:
        rows_at = pad - np.rint(x * math.tan(float(tilt))).astype(int)[None, :] + np.arange(h)[:, None]
        sheared = np.zeros((h + 2 * pad, cells), bool)
        sheared[rows_at, np.arange(cells)[None, :]] = pooled
        rows, starts, ends = runs(sheared)
        keep = (ends - starts + 1) * pool >= length  # a cell more: the partial cells at a line's ends
        if not keep.any():
            continue
        marks = np.zeros((sheared.shape[0], cells + 1), np.int32)  # +1 where a long run starts, -1 past its end
        np.add.at(marks, (rows[keep], starts[keep]), 1)
        np.add.at(marks, (rows[keep], ends[keep]), -1)
        found |= (np.cumsum(marks[:, :cells], axis=1) > 0)[rows_at, np.arange(cells)[None, :]]
    found[:, 1:] |= found[:, :-1].copy()  # and the partial cells at a rule's ends
    found[:, :-1] |= found[:, 1:].copy()
    return np.repeat(found, pool, axis=1)[:, :w] & mask


def _thickness(rules: np.ndarray) -> float:
    """How thick the rules are: their runs down the columns, of the thinner quarter (where no digit's
    stroke runs into them)."""
    _, starts, ends = runs(rules.T)
    return float(np.percentile(ends - starts, 25)) if len(starts) else 0.0


def _pen(labels: np.ndarray, boxes: list) -> float:
    """How wide the writing's strokes are: of its pieces' widths, the upper quartile (the sides of
    boxes, thin lines, are pieces too)."""
    return float(np.percentile([_width(labels[t:b, left:r] == i) for i, (t, left, b, r) in enumerate(boxes, start=1)], 75))


def _width(mask: np.ndarray) -> float:
    """How wide the mask's strokes are: twice their area over their outline (a stroke of width w
    and length l has area w * l and an outline of about 2 * l)."""
    mask = np.pad(mask, 1)  # ink at the edge has its outline there
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    outline = int((mask & ~inner).sum())
    return 2 * int(mask.sum()) / outline if outline else 0.0


def _median_run(mask: np.ndarray) -> float:
    """The median length of the mask's horizontal runs (of a plumb line: its thickness)."""
    _, starts, ends = runs(mask)
    return float(np.median(ends - starts)) if len(starts) else 0.0


def _rule_extent(rules: np.ndarray) -> int:
    cols = np.flatnonzero(rules.any(axis=0))
    return int(cols[-1] - cols[0] + 1) if len(cols) else 0


def _between(labels: np.ndarray, boxes: list, rules: np.ndarray) -> np.ndarray:
    """Of the pieces that touch a rule at their top and at their bottom, the plumb lines that run
    (nearly) from one to the other: the sides of a frame or of boxes, without a digit that touches them."""
    near = dilate_cross(rules, iterations=2)
    thickness = _median_run(rules.T)  # the rules' own, down
    out = np.zeros(rules.shape, bool)
    for i, (top, left, bottom, right) in enumerate(boxes, start=1):
        piece = labels[top:bottom, left:right] == i
        edge = max(2, (bottom - top) // 10)
        if (piece[:edge] & near[top : top + edge, left:right]).any() and \
                (piece[-edge:] & near[bottom - edge : bottom, left:right]).any():
            side = _level_runs(piece.T, SIDE_SPAN * (bottom - top)).T
            if side.any() and _median_run(side) <= SIDE_THICK * thickness:  # not a digit's stroke
                out[top:bottom, left:right] |= side
    return out


def _boxes(mask: np.ndarray) -> np.ndarray:
    """The lines of pieces that hold another piece (at least BOXED_HEIGHT as tall) on four sides and
    are made of straight lines (level or plumb, across nearly their whole box): a box, or a row of
    boxes; a digit that touches them stays."""
    labels, boxes = pieces(mask)
    out = np.zeros(mask.shape, bool)
    if len(boxes) > MAX_PIECES:  # no number; `segment` refuses it, and the work here grows with its square
        return out
    inside = {i: [b for j, b in enumerate(boxes, start=1) if j != i and b[0] >= t and b[1] >= left and b[2] <= bottom
                  and b[3] <= r and b[2] - b[0] >= BOXED_HEIGHT * (bottom - t)]
              for i, (t, left, bottom, r) in enumerate(boxes, start=1)}
    enclosing = [i for i, found in inside.items() if found]
    if len(enclosing) > MAX_BOXES:  # boxes in boxes: no form of a number; each costs a look at its whole box
        return out
    for i in enclosing:  # (pieces with nothing inside, or only a dot, as a monospace font's "0", are none)
        top, left, bottom, right = boxes[i - 1]
        piece = labels[top:bottom, left:right] == i
        if not any(_around(piece, (b[0] - top, b[1] - left, b[2] - top, b[3] - left)) for b in inside[i]):
            continue  # a "7" whose bar overhangs a "1" holds it on two sides, not four
        # its lines run (nearly) its whole width or height: a "1" that touches its box is shorter
        straight = _level_runs(piece, SIDE_SPAN * (right - left)) | _level_runs(piece.T, SIDE_SPAN * (bottom - top)).T
        if straight.sum() >= BOX_STRAIGHT * piece.sum():
            out[top:bottom, left:right] |= straight  # a digit that touches the box stays
    return out


def _around(piece: np.ndarray, box) -> bool:
    """Whether the piece has ink above, below, left and right of the box (top, left, bottom, right)."""
    top, left, bottom, right = box
    return bool(piece[:top, left:right].any() and piece[bottom:, left:right].any()
                and piece[top:bottom, :left].any() and piece[top:bottom, right:].any())
