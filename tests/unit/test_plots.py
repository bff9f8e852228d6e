"""Figures: each function returns a Figure with the promised titles and marks."""

from __future__ import annotations

import base64

import numpy as np
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from digitlab.reports import plots

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (30, 28, 28), dtype=np.uint8)
LABELS = np.arange(30) % 10
PROBS = np.eye(10)[LABELS]
PROBS[3] = np.eye(10)[9]  # one mistake: label 3, predicted 9


def titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def captions(fig: Figure) -> list:
    """The captions of an image grid, in order: texts on its one set of axes."""
    (ax,) = fig.axes
    return list(ax.texts)


def test_samples_grid_captions_are_labels(tmp_path):
    fig = plots.plot_samples(IMAGES, LABELS, n=12)
    assert [t.get_text() for t in captions(fig)] == [str(i % 10) for i in range(12)]
    extents = [tuple(image.get_extent()) for image in fig.axes[0].images]
    assert len(set(extents)) == 12  # each in its own tile
    assert all(bottom > top for _, _, bottom, top in extents)  # upright, on axes whose y runs down
    assert extents[1][0] > extents[0][1] and extents[5][2] < extents[5 + 4][3]  # left to right, row by row
    fig.savefig(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_predictions_are_captioned_and_mistakes_marked(tmp_path):
    fig = plots.plot_predictions(IMAGES, LABELS, PROBS, n=10)
    texts = captions(fig)
    assert texts[0].get_text() == "Predicted: 0  Label: 0" and texts[0].get_color() == plots.CORRECT
    mistake = [t for t in texts if t.get_text() == "Predicted: 9  Label: 3"]
    assert len(mistake) == 1 and mistake[0].get_color() == plots.MISTAKE
    frames = [p for p in fig.axes[0].patches if to_hex(p.get_edgecolor()) == plots.MISTAKE]
    assert len(frames) == 1 and frames[0].get_linewidth() == 3
    assert "1 of 10 wrong" in fig.get_suptitle()
    fig.savefig(tmp_path / "p.png")


def test_an_empty_grid_says_so():
    fig = plots.plot_predictions(IMAGES[:0], LABELS[:0], PROBS[:0])
    assert [t.get_text() for t in captions(fig)] == ["no images to show"]


def test_history_has_training_and_validation_curves():
    fig = plots.plot_history({"accuracy": [0.9, 0.95], "val_accuracy": [0.91, 0.94], "loss": [0.3, 0.2], "val_loss": [0.3, 0.25]})
    assert titles(fig) == ["Accuracy", "Loss"]
    assert [line.get_label() for line in fig.axes[0].lines] == ["training", "validation"]


def test_confusion_heat_map_writes_counts():
    cm = np.diag([98, 97]) + np.array([[0, 2], [3, 0]])
    fig = plots.plot_confusion(cm, ["cat", "dog"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(texts) == ["2", "3", "97", "98"]


def test_probabilities_bars_highlight_the_prediction():
    p = np.full(10, 0.02)
    p[7] = 0.82
    fig = plots.plot_probabilities(p, image=IMAGES[0], label=7)
    bars = fig.axes[1].patches
    assert len(bars) == 10 and bars[7].get_height() == 0.82
    assert fig.axes[1].get_title() == "predicted 7 (82.0%)"


def test_the_report_embeds_the_runs_own_figures_and_draws_only_the_rest(tmp_path, monkeypatch):
    """Issue 24: the curves and the confusion matrix are drawn once, for their PNG files, and the
    report embeds those files' bytes; it still draws them itself when it is given none."""
    import base64

    from digitlab.evaluation.evaluate import Evaluation
    from digitlab.reports import report

    evaluation = Evaluation("mnist", [str(i) for i in range(10)], LABELS, PROBS)
    history = {"accuracy": [0.5, 0.9], "loss": [1.0, 0.3], "val_accuracy": [0.6, 0.9], "val_loss": [0.9, 0.4]}
    drawn = {"curves": plots.save_figure(plots.plot_history(history), tmp_path / "curves.png"),
             "confusion": plots.save_figure(plots.plot_confusion(evaluation.confusion), tmp_path / "confusion.png")}
    drawing = []
    for name in ("plot_history", "plot_confusion", "plot_predictions"):
        real = getattr(plots, name)
        monkeypatch.setattr(plots, name, lambda *a, _real=real, _name=name, **k: drawing.append(_name) or _real(*a, **k))
    args = (tmp_path, {"model": "mlp"}, history, evaluation, IMAGES, {"train_seconds": 1.0}, {"python": "3"})
    page = report.write_report(*args, drawn=drawn).read_text()
    assert drawing == ["plot_predictions"]  # the one mistake, sure of itself
    for path in drawn.values():
        assert base64.b64encode(path.read_bytes()).decode() in page
    report.write_report(*args)
    assert drawing == ["plot_predictions", "plot_history", "plot_confusion", "plot_predictions"]


def _inside(fig: Figure) -> None:
    """Every mark of `fig` lies within it, and no panel's labels run into the panel to its left."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.get_tightbbox(renderer)
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox_inches.x1 and box.y1 <= fig.bbox_inches.y1, box
    panels = sorted((ax for ax in fig.axes if ax.get_label() != "<colorbar>"), key=lambda ax: ax.get_position().x0)
    for left, right in zip(panels, panels[1:]):
        assert right.get_tightbbox(renderer).x0 >= left.get_window_extent(renderer).x1


def test_figures_laid_out_without_measuring_keep_every_label_in_view():
    """The run's figures place their panels where constrained layout would for digit names,
    without its cost (issue 24); extreme values and long names must still fit."""
    for acc in ([0.1, 0.2, 0.3], [0.9912, 0.9913, 0.99135], [0.5] * 40):
        for loss in ([0.0875, 0.0625, 0.05], [123456.0, 0.5], [0.00012, 0.000115], [float("nan"), 1.0],
                     [-0.0025, -0.0125, 0.0]):
            _inside(plots.plot_history({"accuracy": acc, "val_accuracy": acc[::-1], "loss": loss, "val_loss": loss}))
    _inside(plots.plot_confusion(np.full((10, 10), 99999)))
    long_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    _inside(plots.plot_confusion(np.full((10, 10), 999), long_names))
    _inside(plots.plot_confusion(np.full((3, 3), 999), ["WW", "MM", "@@"]))  # wide, if short
    for names in (None, long_names):
        _inside(plots.plot_probabilities(PROBS[0], names, IMAGES[0], 0))
        _inside(plots.plot_probabilities(PROBS[0], names))


def test_a_style_with_larger_fonts_gets_constrained_layout():
    """The fixed places fit matplotlib's default sizes; a user's style with others is measured."""
    import matplotlib

    history = {"accuracy": [0.9912, 0.9913], "val_accuracy": [0.99, 0.991], "loss": [123456.0, 0.5], "val_loss": [1, 2]}
    with matplotlib.rc_context({"font.size": 16}):
        for fig in (plots.plot_history(history), plots.plot_confusion(np.full((10, 10), 99999)),
                    plots.plot_probabilities(PROBS[0], None, IMAGES[0], 0)):
            assert fig.get_layout_engine() is not None
            _inside(fig)


def test_a_report_given_all_its_figures_draws_nothing(tmp_path, monkeypatch):
    """The run's helpers draw the figures; the page is then put together without matplotlib."""
    from digitlab.evaluation.evaluate import Evaluation
    from digitlab.reports import report

    def no_drawing():
        raise AssertionError("the report drew a figure it was given")

    monkeypatch.setattr(report, "_plots", no_drawing)
    evaluation = Evaluation("mnist", [str(i) for i in range(10)], LABELS, PROBS)
    history = {"accuracy": [0.5, 0.9], "loss": [1.0, 0.3], "val_accuracy": [0.6, 0.9], "val_loss": [0.9, 0.4]}
    (tmp_path / "c.png").write_bytes(b"curves-png")
    (tmp_path / "m.png").write_bytes(b"matrix-png")
    args = (tmp_path, {}, history, evaluation, IMAGES, {}, {})
    page = report.write_report(*args, drawn={"curves": tmp_path / "c.png", "confusion": tmp_path / "m.png",
                                             report.MISTAKES: b"mistakes-png"}).read_text()
    for png in (b"curves-png", b"matrix-png", b"mistakes-png"):
        assert base64.b64encode(png).decode() in page
    page = report.write_report(*args, drawn={"curves": tmp_path / "c.png", "confusion": tmp_path / "m.png",
                                             report.MISTAKES: None}).read_text()
    assert "most confident mistakes" not in page and page.count("data:image/png") == 2
