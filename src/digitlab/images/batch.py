"""MNIST-style preparation of many images at once: a folder of scans at the speed of decoding.

`to_mnist(to_ink(open_image(x)))` spends most of its time in NumPy's per-call overhead (a
percentile, a histogram, a labelling: a few microseconds of work each, tens of microseconds of
call) when the image is a 28 x 28 scan. Here the images of one size are stacked and each step runs
once for the stack, with exactly the arithmetic of the one-image path, so the prepared images are
bit for bit the same (tests/unit/test_batch.py holds them equal, and hypothesis checks the two
replicas of NumPy below against NumPy itself). Only the last step, scaling each digit's box into
the 28 x 28 frame, stays one image at a time: every box has its own size.

Images of a size seen fewer than MIN_STACK times, and images whose transparency is their ink, take
the one-image path.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from digitlab.errors import ImageError
from digitlab.images.components import dilate_cross, zoom_linear
from digitlab.images.prepare import SPECK_SHARE, blank_error, boxed, digit_mask, mass_centred, to_mnist
from digitlab.images.read import WORK_SIDE, ink_of_gray, open_image, orientation, to_gray
from digitlab.images.rulings import MIN_LINE

MIN_STACK = 16  # fewer images of a size than this go one by one (SciPy's import is not worth it)
OTSU_BINS = 256
PLAIN_FORMATS = ("PNG", "JPEG", "BMP", "PPM", None)  # None: an image made from an array


def prepare_many(images: Sequence, names: Sequence[str]) -> list[np.ndarray | ImageError]:
    """For each image (path, bytes, PIL image or array) its (28, 28) float32 preparation, or the
    ImageError that `Recognizer.prepare` would raise for it, in order."""
    out: list[np.ndarray | ImageError | None] = [None] * len(images)
    by_kind: dict[tuple, list[tuple[int, np.ndarray]]] = {}  # (dtype, shape) -> (index, grey levels)
    for i, (image, name) in enumerate(zip(images, names)):
        try:
            picture = open_image(image, name=name)
            values, is_ink = (plain, False) if (plain := plain_gray(picture)) is not None else to_gray(picture, name=name)
            if is_ink:
                out[i] = to_mnist(values, name=name)
            else:
                by_kind.setdefault((values.dtype.str, values.shape), []).append((i, values))
        except ImageError as e:
            out[i] = e
    for group in by_kind.values():
        grays = np.stack([gray for _, gray in group])
        if grays.dtype == np.uint8:
            grays = grays.astype(np.float32) / 255  # to_gray's arithmetic, for the stack at once
        if len(group) < MIN_STACK:
            for (i, _), gray in zip(group, grays):
                try:
                    out[i] = to_mnist(ink_of_gray(gray), name=names[i])
                except ImageError as e:
                    out[i] = e
        else:
            for (i, _), prepared in zip(group, prepare_stack(grays, [names[i] for i, _ in group])):
                out[i] = prepared
    return out  # type: ignore[return-value]


def prepared_chunks(chunks: Iterable[tuple[list, list[str]]], workers: int = 1) -> Iterator[tuple[list[str], list]]:
    """(names, `prepare_many(images, names)`) for each chunk (images, names), in order.

    With workers > 1 and more than one chunk (a folder of scans, not one file), the chunks are
    prepared in that many processes, a few ahead of the one being used; one chunk, or one worker,
    stays in this process and starts nothing."""
    chunks = iter(chunks)
    head = list(itertools.islice(chunks, 2))
    if workers <= 1 or len(head) < 2:
        for images, names in itertools.chain(head, chunks):
            yield names, prepare_many(images, names)
        return
    import multiprocessing  # here, not at the top: a single image's cold predict needs neither
    from concurrent.futures import ProcessPoolExecutor

    from threadpoolctl import threadpool_limits

    # spawn: the caller has threads (Keras, JAX, a server) that a fork would copy mid-flight
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker)
    # While the workers prepare, this process's BLAS uses one thread for the model: OpenBLAS's
    # threads spin between calls and took the workers' cores (2,100 images/s with 2 workers, 3,300 without).
    limits = threadpool_limits(limits=1, user_api="blas")
    try:
        pending: deque = deque()
        for images, names in itertools.chain(head, chunks):
            pending.append((names, pool.submit(prepare_many, images, names)))
            if len(pending) > 2 * workers:
                names_done, future = pending.popleft()
                yield names_done, future.result()
        while pending:
            names_done, future = pending.popleft()
            yield names_done, future.result()
    finally:
        limits.restore_original_limits()
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker() -> None:
    """A worker leaves Ctrl-C to its parent, which stops the pool (no traceback from each worker),
    and imports SciPy's labelling while the parent is still sending the first chunks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import scipy.ndimage  # noqa: F401


def default_workers() -> int:
    """Processes for preparing a folder of images: the cores this process may use, at most 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def plain_gray(image: Image.Image) -> np.ndarray | None:
    """The uint8 grey levels of a plain image: a grey or RGB PNG, JPEG, BMP, PGM/PPM or array,
    upright, at most WORK_SIDE a side. For those `to_gray` gives these levels / 255 (its other
    steps do nothing), and the division is done here for a whole stack. None for any other image:
    GIF, TIFF and WebP can hold several frames, whose reading would need the file, closed by now."""
    if image.format not in PLAIN_FORMATS or image.mode not in ("L", "RGB") or max(image.size) > WORK_SIDE \
            or 0 in image.size:
        return None
    if orientation(image) != 1:
        return None
    gray = image if image.mode == "L" else image.convert("L")
    return np.frombuffer(gray.tobytes(), np.uint8).reshape(gray.height, gray.width)  # np.asarray's bytes, sooner


def prepare_stack(grays: np.ndarray, names: Sequence[str]) -> list[np.ndarray | ImageError]:
    """`to_mnist(ink_of_gray(g))` for each of a stack of grey images (n, h, w), float32 in [0, 1]."""
    ink = inks(grays)
    mask = ink_masks(ink)
    if max(mask.shape[1:]) >= MIN_LINE:  # one by one: the lines of a box or cell around a digit (to_mnist's)
        mask = np.stack([digit_mask(m) for m in mask])
    blank = ~mask.any(axis=(1, 2))
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    top, left = rows.argmax(axis=1), cols.argmax(axis=1)
    bottom, right = rows.shape[1] - rows[:, ::-1].argmax(axis=1), cols.shape[1] - cols[:, ::-1].argmax(axis=1)
    # Keep the anti-aliased edges next to the stroke (see to_mnist), scaled by the strong ink level.
    near = dilate_cross(mask, iterations=2)
    strong = quantile_rows(np.where(mask, ink, np.inf).reshape(len(ink), -1), mask.sum(axis=(1, 2)), 90)
    # to_mnist divides by max(strong, 1e-6), a float32 or (for a strong level under it) a float
    level = np.where(strong > np.float32(1e-6), strong, np.float32(1e-6)).astype(np.float32)
    scaled = np.clip(np.where(near, ink, 0) / level[:, None, None], 0, 1).astype(np.float32)
    found = np.flatnonzero(~blank)
    frames = mass_centred(np.stack([boxed(np.ascontiguousarray(scaled[k, top[k] : bottom[k], left[k] : right[k]]))
                                    for k in found])) if len(found) else []
    out: list[np.ndarray | ImageError] = [blank_error(name) for name in names]
    for k, frame in zip(found, frames):
        out[k] = frame
    return out


def inks(grays: np.ndarray) -> np.ndarray:
    """`ink_of_gray` of each image of a stack (n, h, w)."""
    n = len(grays)
    flat = grays.reshape(n, -1)
    low, median, high = np.percentile(flat, [0.1, 50, 99.9], axis=1)
    dark_on_light = median - low > high - median
    grays = np.where(dark_on_light[:, None, None], 1 - grays, grays)
    return np.clip(grays - backgrounds(grays), 0, None).astype(np.float32)


def backgrounds(grays: np.ndarray, blocks: int = 4) -> np.ndarray:
    """`background_of` of each image of a stack (n, h, w): the block percentiles computed for the
    stack at once, stretched over each image."""
    n, h, w = grays.shape
    if min(h, w) < 100:
        return np.percentile(grays.reshape(n, -1), 10, axis=1)[:, None, None]
    rows = np.array_split(np.arange(h), min(blocks, h))
    cols = np.array_split(np.arange(w), min(blocks, w))
    grid = np.stack([np.stack([np.percentile(grays[:, r[0] : r[-1] + 1, c[0] : c[-1] + 1].reshape(n, -1), 10, axis=1)
                               for c in cols], axis=1) for r in rows], axis=1)
    return np.stack([zoom_linear(g, (h, w)) for g in grid])


def ink_masks(ink: np.ndarray) -> np.ndarray:
    """`ink_mask` of each ink map of a stack (n, h, w)."""
    from scipy import ndimage

    n, h, w = ink.shape
    flat = ink.reshape(n, -1)
    peak = flat.max(axis=1)
    level = np.maximum(otsu_rows(flat, peak), 0.05 * peak.astype(np.float64))
    # to_mnist compares float32 ink with a Python float, which NumPy casts to float32 first
    mask = (ink > level.astype(np.float32)[:, None, None]) & (peak >= 0.05)[:, None, None]
    # Each image's pieces of ink, 8-connected, as ink_mask finds them: the stack labelled as one tall
    # image with a blank row under each, so that no piece reaches into the next image.
    tall = np.zeros((n, h + 1, w), bool)
    tall[:, :h] = mask
    labels, count = ndimage.label(tall.reshape(n * (h + 1), w), structure=np.ones((3, 3)))
    labels = labels.reshape(n, h + 1, w)[:, :h]
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    owner = np.zeros(count + 1, np.intp)
    owner[labels] = np.arange(n)[:, None, None]
    largest = np.zeros(n, sizes.dtype)
    np.maximum.at(largest, owner[1:], sizes[1:])
    keep = sizes >= SPECK_SHARE * largest[owner]
    keep[0] = False
    return keep[labels]


def otsu_rows(values: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """`otsu(v)` of each row v of (n, m) float32 values >= 0 whose maxima are `peaks`.

    NumPy's histogram, for bins of equal width, finds each value's bin by this arithmetic; it is
    written out here because np.histogram takes one range, and every row has its own."""
    n = len(values)
    # range=(0.0, float(max) or 1.0); a faint row (under 0.05: blank, its threshold unused) gets 1.0
    # too, where NumPy would refuse a range too small for 256 bins
    last = np.where(peaks >= 0.05, peaks.astype(np.float64), 1.0)
    edges = np.linspace(0.0, last, OTSU_BINS + 1, axis=1).astype(np.float32)
    index = ((values - np.float32(0.0)) / last[:, None] * OTSU_BINS).astype(np.intp)
    index[index == OTSU_BINS] -= 1
    index[values < np.take_along_axis(edges, index, axis=1)] -= 1
    above = (values >= np.take_along_axis(edges, index + 1, axis=1)) & (index != OTSU_BINS - 1)
    index[above] += 1
    hist = np.bincount((index + OTSU_BINS * np.arange(n)[:, None]).ravel(),
                       minlength=n * OTSU_BINS).reshape(n, OTSU_BINS).astype(np.float64)
    centers = (edges[:, :-1] + edges[:, 1:]) / 2
    w0 = np.cumsum(hist, axis=1)
    w1 = w0[:, -1:] - w0
    m0 = np.cumsum(hist * centers, axis=1)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[:, -1:] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return centers[np.arange(n), between.argmax(axis=1)].astype(np.float64)


def quantile_rows(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """`np.percentile(row[:count], q)` of each row of float32 `values`, whose first `count` values
    (in any order) are the ones that count and the rest +inf: NumPy's "linear" method with a
    Python-float q, written out because each row has its own count. float32, as NumPy gives."""
    ordered = np.sort(values, axis=1)
    counts = np.asarray(counts, np.int64)
    quantile = np.true_divide(q, 100)
    virtual = (counts - 1) * quantile  # NumPy's linear method; the general formula rounds differently (21 values, q 90)
    previous = np.floor(virtual)
    last = np.maximum(counts - 1, 0)
    below, above = previous.astype(np.intp), previous.astype(np.intp) + 1
    out_of_range = virtual >= counts - 1
    below[out_of_range] = above[out_of_range] = last[out_of_range]
    below[virtual < 0] = above[virtual < 0] = 0
    gamma = virtual - previous  # where both neighbours are one value, gamma does not matter
    rows = np.arange(len(values))
    a, b = ordered[rows, below], ordered[rows, above]
    with np.errstate(invalid="ignore"):  # a row with no values: inf - inf, a NaN nobody uses
        diff = b - a
        return np.where(gamma >= 0.5, b - diff * (1 - gamma).astype(np.float32), a + diff * gamma.astype(np.float32))
