"""Figures a person would rather look at than read. Each function takes arrays, returns a Figure.

Figures are built with matplotlib's object API (no pyplot global state, no GUI backend), so they
work in scripts, servers and notebooks alike; the caller saves or displays them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from digitlab.errors import ConfigError
from digitlab.files import atomic_write, write_errors

MISTAKE = "#c62828"
CORRECT = "#1b5e20"
BAR = "#90a4ae"


def _grid(n: int, max_cols: int = 10) -> tuple[int, int]:
    n = max(n, 1)  # an empty grid still gets one (blank) cell for its message
    cols = min(n, max_cols, math.ceil(math.sqrt(n)) if n <= 25 else max_cols)
    return math.ceil(n / cols), cols


def _names(class_names: Sequence[str] | None, k: int) -> list[str]:
    return list(class_names) if class_names is not None else [str(i) for i in range(k)]


def _fixed(names: Sequence[str]) -> bool:
    """Whether a figure's axes go where constrained layout puts them for digit names in matplotlib's
    default sizes (hard-coded below), not where it works them out: measuring every label cost
    0.1-0.15 s a figure, a third of a run's figures (BENCHMARKS.md, whole runs). Other names, and
    a style with other font sizes, still get constrained layout."""
    return _default_sizes() and all(len(n) <= 2 and n.isdigit() for n in names)


def _default_sizes() -> bool:
    import matplotlib

    return all(matplotlib.rcParams[k] == v for k, v in (("font.size", 10.0), ("axes.labelsize", "medium"),
               ("xtick.labelsize", "medium"), ("ytick.labelsize", "medium"), ("axes.titlesize", "large")))


def plot_samples(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str] | None = None,
    n: int = 25,
    title: str = "Sample images",
) -> Figure:
    """A grid of the first `n` images, each captioned with its label."""
    _check_images(images, labels, n)
    n = min(n, len(images))
    names = _names(class_names, int(np.max(labels)) + 1 if len(labels) else 10)
    captions = [names[int(labels[i])] for i in range(n)]
    fig = _image_grid(images[:n], captions, ["black"] * n, [None] * n, _grid(n), tile=1.3, fontsize=9,
                      empty="no images", vmax=255 if images.dtype == np.uint8 else 1)
    fig.suptitle(title)
    return fig


def _check_images(images, labels, n: int) -> None:
    """A ValueError saying what is wrong, not an IndexError from inside the grid: a label for each
    of the first `n` images (more are fine: a run's figures pass all labels and the images shown)."""
    if np.ndim(images) not in (3, 4) or np.ndim(labels) != 1 or len(labels) < min(n, len(images)):
        raise ValueError(f"images (n, height, width) and one label each are needed, not images of shape "
                         f"{np.shape(images)} and labels of shape {np.shape(labels)}.")


def _image_grid(images, captions: list[str], colours: list[str], frames: list[tuple[str, float] | None],
                grid: tuple[int, int], tile: float, fontsize: float, empty: str, vmax: float | None = None) -> Figure:
    """Images in a grid on one set of axes, each with a caption above it and an optional frame.

    One Axes with an image per tile, not a grid of Axes: matplotlib builds and lays out each Axes
    with its ticks and title, so a 25-image figure took seconds to save (several times faster this
    way; BENCHMARKS.md). `tile` is a tile's size in inches.
    `vmax` None scales each image to its own range, as `imshow` does.
    """
    rows, cols = grid
    gap, band, top = 0.2 * tile, fontsize / 72 * 1.9, 0.55  # inches: between tiles, caption, suptitle
    cell_w, cell_h = tile + gap, tile + band
    fig = Figure(figsize=(cols * cell_w, rows * cell_h + top))
    ax = fig.add_axes((0, 0, 1, rows * cell_h / (rows * cell_h + top)))
    ax.set_axis_off()
    if not len(images):
        ax.text(cols * cell_w / 2, rows * cell_h / 2, empty, ha="center", va="center")
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        x0, y0 = c * cell_w + gap / 2, r * cell_h + band
        h, w = image.shape[:2]
        scale = tile / max(h, w)  # a non-square image keeps its shape, centred in its tile
        x, y = x0 + (tile - w * scale) / 2, y0 + (tile - h * scale) / 2
        ax.imshow(image, cmap="gray_r", vmin=0 if vmax is not None else None, vmax=vmax,
                  extent=(x, x + w * scale, y + h * scale, y), interpolation="nearest")
        ax.text(x0 + tile / 2, y0 - band * 0.25, captions[i], ha="center", va="bottom", fontsize=fontsize,
                color=colours[i])
        if frames[i] is not None:
            colour, width = frames[i]
            ax.add_patch(Rectangle((x0, y0), tile, tile, fill=False, edgecolor=colour, linewidth=width))
    # The axes span the figure below the title, in inches: set after imshow, which rescales them.
    ax.set_aspect("auto")
    ax.set_xlim(0, cols * cell_w)
    ax.set_ylim(rows * cell_h, 0)
    return fig


def plot_history(history: dict[str, list[float]], title: str = "Training curves") -> Figure:
    """Accuracy and loss per epoch, training against validation, side by side."""
    fixed = _default_sizes()
    fig = Figure(figsize=(10, 4), layout=None if fixed else "constrained")
    axes = [fig.add_axes((0.0, 0.118, 0.4, 0.756)), fig.add_axes((0.5, 0.118, 0.4, 0.756))] if fixed else fig.subplots(1, 2)
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for key, label, style in ((metric, "training", "o-"), (f"val_{metric}", "validation", "s--")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize())
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    # Room on the left of each panel for its y tick labels and label, from the labels' text: what
    # constrained layout measures by drawing, at a third of the figure's cost (BENCHMARKS.md).
    if fixed:
        left = [(0.33 + 0.095 * _widest_tick(ax)) / 10 for ax in axes]  # inches (a digit is 0.09 at 10 pt) over 10
        width = (1 - left[0] - left[1] - 0.01) / 2
        axes[0].set_position((left[0], 0.118, width, 0.756))
        axes[1].set_position((left[0] + width + left[1], 0.118, width, 0.756))
    fig.suptitle(title)
    return fig


def _widest_tick(ax) -> int:
    """Characters in the longest y tick label `ax` will draw."""
    labels = ax.yaxis.get_major_formatter().format_ticks(ax.yaxis.get_majorticklocs())
    return max(map(len, labels), default=1)


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str] | None = None, title: str = "Confusion matrix"
) -> Figure:
    """A heat map of the confusion matrix with counts in the cells (rows: true, columns: predicted)."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square (classes x classes), not of shape {matrix.shape}.")
    names = _names(class_names, len(matrix))
    fixed = _fixed(names)
    fig = Figure(figsize=(7.5, 6.5), layout=None if fixed else "constrained")
    ax = fig.add_axes((0.073, 0.073, 0.77, 0.889)) if fixed else fig.subplots()
    # Colour by row share, so mistakes show up even beside a diagonal of ~1,000.
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if fixed:
        fig.colorbar(im, cax=fig.add_axes((0.883, 0.073, 0.039, 0.889)), label="share of the true class")
    else:
        fig.colorbar(im, ax=ax, label="share of the true class")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if share[i, j] > 0.5 else ("black" if i == j else MISTAKE)
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right" if max(map(len, names)) > 2 else "center")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def plot_predictions(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str] | None = None,
    n: int = 25,
    title: str = "Test predictions",
) -> Figure:
    """A grid of images titled "Predicted: p  Label: l"; mistakes in red with a red frame."""
    _check_images(images, labels, n)
    if np.ndim(probabilities) != 2 or len(probabilities) < min(n, len(images)):
        raise ValueError(f"probabilities must be (n, classes) for the images shown, not {np.shape(probabilities)}.")
    n = min(n, len(images))
    names = _names(class_names, probabilities.shape[1])
    predicted = probabilities.argmax(axis=1)
    wrong = [bool(predicted[i] != labels[i]) for i in range(n)]
    fig = _image_grid(
        images[:n], [f"Predicted: {names[predicted[i]]}  Label: {names[int(labels[i])]}" for i in range(n)],
        [MISTAKE if w else CORRECT for w in wrong], [(MISTAKE, 3) if w else ("#cccccc", 1) for w in wrong],
        _grid(n, max_cols=5), tile=2.2, fontsize=8, empty="no images to show")
    fig.suptitle(f"{title} ({sum(wrong)} of {n} wrong, in red)")
    return fig


def plot_probabilities(
    probabilities: np.ndarray,
    class_names: Sequence[str] | None = None,
    image: np.ndarray | None = None,
    label: int | None = None,
    title: str = "Softmax probabilities",
) -> Figure:
    """The softmax output for one image as bars, the predicted class highlighted, the image beside."""
    probabilities = np.asarray(probabilities).ravel()
    names = _names(class_names, len(probabilities))
    predicted = int(probabilities.argmax())
    fixed = _fixed(names)
    fig = Figure(figsize=(9 if image is not None else 7, 3.6), layout=None if fixed else "constrained")
    if image is not None:
        ax_img, ax = ((fig.add_axes((0.005, 0.129, 0.271, 0.679)), fig.add_axes((0.344, 0.077, 0.652, 0.783)))
                      if fixed else fig.subplots(1, 2, width_ratios=[1, 2.4]))
        ax_img.imshow(image, cmap="gray_r")
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title("the image" if label is None else f"Label: {names[label]}")
    else:
        ax = fig.add_axes((0.08, 0.077, 0.914, 0.783)) if fixed else fig.subplots()
    wrong = label is not None and label != predicted
    colours = [BAR] * len(probabilities)
    colours[predicted] = MISTAKE if wrong else CORRECT
    bars = ax.bar(range(len(probabilities)), probabilities, color=colours)
    for bar, p in zip(bars, probabilities):
        if p >= 0.01:
            ax.text(bar.get_x() + bar.get_width() / 2, p + 0.02, f"{p:.0%}", ha="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 2 else 0)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("probability")
    ax.set_title(f"predicted {names[predicted]} ({probabilities[predicted]:.1%})")
    fig.suptitle(title)
    return fig


def plot_layer_health(history: dict[str, list[float]], title: str = "Layer health during training") -> Figure:
    """Per-layer gradient norms and update-to-weight ratios per epoch (log scale)."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    panels = (("grad_norm/", "gradient norm of the kernel"), ("update_ratio/", "||W_end - W_start|| / ||W_start||"))
    for ax, (prefix, label) in zip(fig.subplots(1, 2), panels):
        for key, values in history.items():
            if key.startswith(prefix) and values:
                ax.plot(range(1, len(values) + 1), np.maximum(values, 1e-12), "o-", label=key[len(prefix):])
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3, which="both")
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not recorded for this run", ha="center", va="center", transform=ax.transAxes)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    return fig


def plot_leaderboard(entries: Sequence) -> Figure:
    """Test accuracy against training time (log scale), one marker per model, one panel per data set.

    `entries`: digitlab.lab.compare's leaderboard rows (model, dataset, test_accuracy, train_seconds)."""
    datasets = list(dict.fromkeys(e.dataset for e in entries))
    fig = Figure(figsize=(5.5 * len(datasets), 4.2), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        for e in (e for e in entries if e.dataset == dataset):
            ax.scatter(max(e.train_seconds, 0.01), 100 * e.test_accuracy, s=40)
            ax.annotate(e.model, (max(e.train_seconds, 0.01), 100 * e.test_accuracy), textcoords="offset points",
                        xytext=(5, 4), fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("training time, s (log scale)")
        ax.set_ylabel("test accuracy, %")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save `fig` atomically, in the format its file name says (PNG without a suffix)."""
    path = Path(path)
    kind = path.suffix.lstrip(".").lower() or "png"
    if kind not in fig.canvas.get_supported_filetypes():
        raise ConfigError(f"{path}: matplotlib cannot write .{kind} files; name it .png, .svg or .pdf.")
    with write_errors(path, "the figure"), atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=kind)
    return path
