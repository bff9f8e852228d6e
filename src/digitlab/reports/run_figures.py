"""A run's five figures and its report, drawn once its results are saved.

The drawing comes in two shares of about equal time (0.4 s each on a 2-core VM; BENCHMARKS.md,
"Whole runs"), each drawn by its own helper process (`digitlab.reports.helper`); the report's page
is then put together from what they drew, without matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitlab.evaluation.evaluate import Evaluation
from digitlab.reports import helper
from digitlab.reports.report import MISTAKES, mistakes_png, write_report

SAMPLES = 25  # training images in samples.png
SHARES = (("samples.png", "curves.png", "confusion.png", "probabilities.png"), ("predictions.png", MISTAKES))


def draw_run(run_dir: Path, config: dict, history: dict, evaluation: Evaluation, samples: tuple[np.ndarray, np.ndarray],
             x_test: np.ndarray, metrics: dict, environment: dict, helpers: list[helper.Helper] | None = None) -> Path:
    """The five figures (PNG files) and `report.html` in the run folder, drawn by the `helpers`
    (here without them); returns the report's path. `samples` is (images, labels): the first
    training images, as many as `samples.png` shows."""
    shares = helper.run_all(helpers or [], draw_share,
                            [(run_dir, names, history, evaluation, samples, x_test) for names in SHARES])
    drawn = {name: value for share in shares for name, value in share.items()}
    return write_report(run_dir, config, history, evaluation, x_test, metrics, environment,
                        drawn={"curves": drawn["curves.png"], "confusion": drawn["confusion.png"],
                               MISTAKES: drawn[MISTAKES]})


def draw_share(run_dir: Path, names: tuple[str, ...], history: dict, evaluation: Evaluation,
               samples: tuple[np.ndarray, np.ndarray], x_test: np.ndarray) -> dict[str, Path | bytes | None]:
    """Some of a run's figures, by name: the standard ones saved into the run folder ({name: path}),
    and the report's `MISTAKES` as PNG bytes (None when there are none)."""
    files = [n for n in names if n != MISTAKES]
    drawn: dict[str, Path | bytes | None] = dict(save_run_figures(run_dir, history, evaluation, *samples, x_test, files))
    if MISTAKES in names:
        drawn[MISTAKES] = mistakes_png(evaluation, x_test)
    return drawn


def save_run_figures(run_dir: Path, history, evaluation: Evaluation, x_train, y_train, x_test,
                     only: list[str] | None = None) -> dict[str, Path]:
    """The five standard figures of a run (or the `only` ones), as PNG files in its folder:
    {file name: path}."""
    from digitlab.reports import plots

    name = f"{evaluation.dataset}, run {run_dir.name}"
    names = evaluation.class_names
    figures = {
        "samples.png": lambda: plots.plot_samples(x_train, y_train, names, n=SAMPLES, title=f"Training samples ({name})"),
        "curves.png": lambda: plots.plot_history(history, title=f"Training curves ({name})"),
        "confusion.png": lambda: plots.plot_confusion(evaluation.confusion, names,
                                                      title=f"Confusion matrix, test set ({name})"),
        "predictions.png": lambda: plots.plot_predictions(x_test, evaluation.labels, evaluation.probabilities, names,
                                                          title=f"Test predictions ({name})"),
        "probabilities.png": lambda: plots.plot_probabilities(
            evaluation.probabilities[0], names, x_test[0], int(evaluation.labels[0]), title=f"Test image 0 ({name})"),
    }
    return {filename: plots.save_figure(draw(), run_dir / filename)
            for filename, draw in figures.items() if only is None or filename in only}
