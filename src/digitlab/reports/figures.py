"""Figures of a run or data set by name, as `digitlab plot KIND [RUN]` draws them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from digitlab.data.augment import distort_images, distortion_for
from digitlab.data.userdata import dataset_info, load_dataset
from digitlab.errors import ConfigError, RunError
from digitlab.evaluation.evaluate import evaluate
from digitlab.reports import plots
from digitlab.runs import HISTORY_JSON, open_run


def make_figure(
    kind: str,
    run: str | os.PathLike | None = None,
    *,
    dataset: str | None = None,
    index: int = 0,
    count: int = 25,
    mistakes: bool = False,
    augment: str | None = None,
    data_dir: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs",
) -> Figure:
    """One of: samples, curves, confusion, predictions, probabilities.

    `augment` ("none", "affine", "elastic"; `samples` only) draws the samples as training distorts
    them; by default as the given run was trained (plain without a run).
    """
    if kind == "samples" and run is not None:
        config = open_run(run, runs_dir).config
        if config is not None:  # else as given: mnist and plain by default
            dataset, augment = dataset or config.dataset, augment or config.augment
    distortion = distortion_for(augment or "none")
    if distortion is not None and kind != "samples":
        raise ConfigError(f"augmentation changes training images: it applies to the samples figure, not to {kind}.")
    if kind == "samples":
        dataset = dataset or "mnist"
        (x, y), _ = load_dataset(dataset, data_dir=data_dir)
        title = f"{dataset}: training samples"
        if distortion is not None:
            x, title = distort_images(x[:count], distortion, seed=0), f"{title}, {augment} distortion"
        return plots.plot_samples(x, y, dataset_info(dataset).class_names, n=count, title=title)
    if kind == "curves":
        opened = open_run(run, runs_dir)
        history = opened.read(HISTORY_JSON)
        if history is None:
            raise RunError(f"{opened.model}: no training history beside it; curves need the run folder the model was trained in.")
        return plots.plot_history(history, title=f"Training curves, run {opened.folder.name}")

    ev = evaluate(run, dataset=dataset, data_dir=data_dir, out=runs_dir)
    _, (x_test, _) = load_dataset(ev.dataset, data_dir=data_dir)
    label = f"{ev.dataset}, {Path(run).name if run else 'latest run'}"
    if kind == "confusion":
        return plots.plot_confusion(ev.confusion, ev.class_names, title=f"Confusion matrix, test set ({label})")
    if kind == "predictions":
        chosen = np.flatnonzero(ev.predicted != ev.labels) if mistakes else np.arange(len(ev.labels))
        chosen = chosen[:count]
        what = "Misclassified test images" if mistakes else "Test predictions"
        return plots.plot_predictions(x_test[chosen], ev.labels[chosen], ev.probabilities[chosen],
                                      ev.class_names, n=count, title=f"{what} ({label})")
    if kind == "probabilities":
        if index >= len(ev.labels):
            raise ConfigError(f"--index {index} is past the last test image ({len(ev.labels) - 1}).")
        return plots.plot_probabilities(ev.probabilities[index], ev.class_names, x_test[index],
                                        int(ev.labels[index]), title=f"Test image {index} ({label})")
    raise ConfigError(f'unknown plot kind "{kind}".')
