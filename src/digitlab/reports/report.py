"""A run's report: one self-contained HTML page (figures inlined, no external assets).

It holds the configuration, the training curves, the confusion matrix, the per-class metrics, the
model's most confident mistakes as images, and the timing and environment, so a run can be read,
mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from digitlab.evaluation.evaluate import Evaluation
from digitlab.files import write_text

REPORT_FILE = "report.html"
MISTAKES = "mistakes"  # the report's figure of the most confident mistakes, in `drawn`


def confident_mistakes(evaluation: Evaluation, n: int = 15) -> np.ndarray:
    """Indices of the test images the model got wrong with the highest probability, most sure first."""
    wrong = np.flatnonzero(evaluation.predicted != evaluation.labels)
    sureness = evaluation.probabilities[wrong].max(axis=1)
    return wrong[np.argsort(-sureness, kind="stable")][:n]


def _plots():
    """matplotlib's figures, imported only when the page has something left to draw."""
    from digitlab.reports import plots

    return plots


def mistakes_figure(evaluation: Evaluation, x_test: np.ndarray):
    """The report's figure of the test images wrong with the highest probability; None when none is wrong."""
    mistakes = confident_mistakes(evaluation)
    if not len(mistakes):
        return None
    return _plots().plot_predictions(x_test[mistakes], evaluation.labels[mistakes], evaluation.probabilities[mistakes],
                                  evaluation.class_names, n=len(mistakes),
                                  title="Wrong, and sure of it (most confident first)")


def mistakes_png(evaluation: Evaluation, x_test: np.ndarray) -> bytes | None:
    """`mistakes_figure` as the PNG bytes the report embeds (drawn elsewhere: `drawn[MISTAKES]`)."""
    fig = mistakes_figure(evaluation, x_test)
    return None if fig is None else _png(fig)


def write_report(run_dir: Path, config: dict, history: dict, evaluation: Evaluation, x_test: np.ndarray,
                 metrics: dict, environment: dict, drawn: dict[str, Path | bytes | None] | None = None) -> Path:
    """Write `report.html` into the run folder; returns its path.

    `drawn` holds figures already drawn of the same data, which the page embeds as they are
    instead of drawing them again (0.2-0.4 s each): PNG files as "curves" and "confusion" (the
    run's own figures), and `MISTAKES` (PNG bytes, None for none). Given all three, the page is
    put together without matplotlib (BENCHMARKS.md, "Whole runs")."""
    names = evaluation.class_names
    drawn = drawn or {}
    figures = {
        # One point (a classic model's single fit) is not a curve.
        "Training curves": (drawn.get("curves") or _plots().plot_history(history, title="Training curves"))
        if max(map(len, history.values()), default=0) > 1 else None,
        "Confusion matrix (test set)": drawn.get("confusion")
        or _plots().plot_confusion(evaluation.confusion, names, title="Confusion matrix"),
        "The most confident mistakes": drawn[MISTAKES] if MISTAKES in drawn else mistakes_figure(evaluation, x_test),
    }
    per_class = "".join(
        f"<tr><td>{html.escape(r['class'])}</td><td>{r['precision']:.3f}</td><td>{r['recall']:.3f}</td>"
        f"<td>{r['f1']:.3f}</td><td>{r['support']:,}</td></tr>" for r in evaluation.per_class
    )
    confused = "".join(
        f"<li>{html.escape(str(c['true']))} read as {html.escape(str(c['predicted']))}: {c['count']} times</li>"
        for c in evaluation.most_confused()
    )
    sections = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='{data_url(fig)}'>"
        for title, fig in figures.items() if fig is not None
    )
    timing = {k: metrics[k] for k in ("train_seconds", "predict_ms_per_1000", "parameters") if k in metrics}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digitlab run {html.escape(run_dir.name)}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #1b1f24; padding: 0 1rem; }}
table {{ border-collapse: collapse; }} th, td {{ padding: .25rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} img {{ max-width: 100%; }}
.big {{ font-size: 2rem; font-weight: 700; }} dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }}
dt {{ color: #5b6470; }} dd {{ margin: 0; }}
</style></head><body>
<h1>Run {html.escape(run_dir.name)}</h1>
<p><span class="big">{evaluation.accuracy:.2%}</span> test accuracy on {len(evaluation.labels):,}
{html.escape(evaluation.dataset)} test images; test loss {evaluation.loss:.4f}.</p>
<h2>Configuration</h2>{_definitions(config)}
{sections}
<h2>Per class</h2>
<table><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead>
<tbody>{per_class}</tbody></table>
<h2>Most confused pairs</h2><ul>{confused or "<li>none</li>"}</ul>
<h2>Timing</h2>{_definitions(timing)}
<h2>Environment</h2>{_definitions(environment)}
</body></html>
"""
    path = run_dir / REPORT_FILE
    write_text(path, page)
    return path


def _definitions(values: dict) -> str:
    rows = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in values.items())
    return f"<dl>{rows}</dl>"


def data_url(fig, dpi: int = 90) -> str:
    """A figure (or a PNG drawn before: its file or bytes) as a PNG `data:` URL, for a self-contained page."""
    png = fig.read_bytes() if isinstance(fig, Path) else fig if isinstance(fig, bytes) else _png(fig, dpi)
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _png(fig, dpi: int = 90) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
