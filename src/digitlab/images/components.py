"""Pieces of ink that touch (8-connectivity), and the small steps of preparation, in NumPy.

`scipy.ndimage` (label, binary_dilation, center_of_mass, shift) is the tool for these, and is
still used where an image is too big for the code here, but importing it takes 0.6 s: more than
half of a cold `digitlab predict one.png`, whose budget is 1 s. An image of a digit holds a few
hundred horizontal runs of ink, which a union-find in Python joins in well under a millisecond;
beyond MAX_RUNS runs (a photo of a page, a crafted image) SciPy labels them. Each function gives
exactly what its SciPy counterpart gives, the zoom to within 2e-16 (tests/unit/test_components.py).
"""

from __future__ import annotations

import numpy as np

MAX_RUNS = 20_000  # above this many runs of ink, scipy.ndimage.label is faster than joining them here


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The horizontal runs of True in a 2-D mask, in row-major order: (row, first column, end column)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows, starts, ends


def component_of_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each run, the index of its piece of ink (runs touching side or corner join), numbered
    by first appearance in row-major order, as `scipy.ndimage.label` numbers them (from 0 here)."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, np.int64)
    width = int(ends.max()) + 2
    start_keys, end_keys = rows * width + starts, rows * width + ends
    # The runs of the next row that touch run a lie together: from the first that ends at or after
    # a's start - 1 (ends are exclusive) to the last that starts at or before a's end.
    below = (rows + 1) * width
    first = np.searchsorted(end_keys, below + starts, side="left")
    last = np.searchsorted(start_keys, below + ends, side="right")
    counts = np.maximum(last - first, 0)
    a = np.repeat(np.arange(n), counts)
    b = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)  # the root is the piece's first run
    roots = np.array([find(x) for x in range(n)])
    _, numbered = np.unique(roots, return_inverse=True)  # roots are first runs: row-major order kept
    return numbered.reshape(-1)


def pieces(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The pieces of ink: a label image (0 for no ink, then 1, 2... in row-major order of each
    piece's first pixel) and each piece's box (top, left, bottom, right), as
    `scipy.ndimage.label(mask, np.ones((3, 3)))` and `find_objects` give them."""
    r, s, e = runs(mask)
    if len(r) > MAX_RUNS:
        from scipy import ndimage

        labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
        return labels, [(a.start, b.start, a.stop, b.stop) for a, b in ndimage.find_objects(labels)]
    piece = component_of_runs(r, s, e)
    labels = np.zeros(mask.shape, np.int32)
    for row, start, end, p in zip(r.tolist(), s.tolist(), e.tolist(), piece.tolist()):
        labels[row, start:end] = p + 1
    n = int(piece.max()) + 1 if len(piece) else 0
    top, left = np.full(n, mask.shape[0]), np.full(n, mask.shape[1])
    bottom, right = np.zeros(n, int), np.zeros(n, int)
    np.minimum.at(top, piece, r)
    np.minimum.at(left, piece, s)
    np.maximum.at(bottom, piece, r + 1)
    np.maximum.at(right, piece, e)
    return labels, list(zip(top.tolist(), left.tolist(), bottom.tolist(), right.tolist()))


def large_pieces(mask: np.ndarray, share: float) -> np.ndarray:
    """`mask` without its pieces smaller than `share` of the largest piece."""
    labels, boxes = pieces(mask)
    if len(boxes) <= 1:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=len(boxes) + 1)[1:]
    return np.isin(labels, np.flatnonzero(sizes >= share * sizes.max()) + 1)


def dilate_cross(mask: np.ndarray, iterations: int) -> np.ndarray:
    """`scipy.ndimage.binary_dilation(mask, iterations=n)`: its default cross, nothing outside. A
    stack of masks (n, h, w) is dilated image by image."""
    out = np.asarray(mask, bool)
    for _ in range(iterations):
        grown = out.copy()
        grown[..., 1:, :] |= out[..., :-1, :]
        grown[..., :-1, :] |= out[..., 1:, :]
        grown[..., 1:] |= out[..., :-1]
        grown[..., :-1] |= out[..., 1:]
        out = grown
    return out


def center_of_mass(image: np.ndarray):
    """`scipy.ndimage.center_of_mass(image)`, computed the same way (the same floating-point sums).
    For a stack of images (n, h, w): two arrays, each image's row and column."""
    h, w = image.shape[-2:]
    flat = image.reshape(-1, h * w)
    total = flat.sum(axis=1)
    rows = np.repeat(np.arange(h, dtype=float), w)  # each pixel's row, in row-major order
    cols = np.tile(np.arange(w, dtype=float), h)
    cy, cx = (flat * rows).sum(axis=1) / total, (flat * cols).sum(axis=1) / total
    return (cy[0], cx[0]) if image.ndim == 2 else (cy, cx)


def shift_whole(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`scipy.ndimage.shift(image, (dy, dx), order=0, mode="constant")` for whole-pixel shifts."""
    h, w = image.shape
    out = np.zeros_like(image)
    if abs(dy) < h and abs(dx) < w:
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
            image[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def zoom_linear(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`scipy.ndimage.zoom(grid, ..., order=1, mode="nearest", grid_mode=True)` to `shape`: a coarse
    grid stretched smoothly over an image, its pixel edges on the image's; within 2e-16 of SciPy's
    (a value's last bit can differ: SciPy's C code sums in another order)."""

    def axis(n_in: int, n_out: int):
        at = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        low = np.floor(at)
        w0 = 1.0 - (at - low)
        index = low.astype(int)
        return index, np.minimum(index + 1, n_in - 1), w0, 1.0 - w0

    (y0, y1, wy0, wy1), (x0, x1, wx0, wx1) = axis(grid.shape[0], shape[0]), axis(grid.shape[1], shape[1])
    grid = np.asarray(grid, float)
    wy0, wy1 = wy0[:, None], wy1[:, None]
    return (grid[y0][:, x0] * wy0 * wx0 + grid[y0][:, x1] * wy0 * wx1
            + grid[y1][:, x0] * wy1 * wx0 + grid[y1][:, x1] * wy1 * wx1)
