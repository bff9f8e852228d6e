"""Compare models on data sets: train every pair, then a leaderboard as a table, Markdown, CSV and HTML.

    >>> board = compare(["mlp", "random-forest"], ["mnist", "fashion-mnist"], limit=10_000)
    >>> write_leaderboard(board, "runs/compare")   # leaderboard.md, .csv, .html

Each pair trains with its preset's recipe in its own process (each network on its own backend),
exactly as `digitlab train` would, so every row is also a complete run folder.
"""

from __future__ import annotations

import csv
import html
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from digitlab.data.userdata import dataset_info
from digitlab.files import atomic_write, write_text
from digitlab.models import get_preset
from digitlab.lab.reproduce import train_here
from digitlab.reports.plots import plot_leaderboard
from digitlab.reports.report import data_url
from digitlab.runs import METRICS_FILE, dataset_label, open_run, read_json


@dataclass
class Entry:
    """One model trained and tested on one data set."""

    model: str
    dataset: str
    test_accuracy: float
    train_seconds: float
    predict_ms_per_1000: float  # the whole test set through the model, per 1,000 images
    size_bytes: int  # the model file on disk
    parameters: int  # weights, or for a classic model the numbers it stores (tree nodes, samples)
    run: str


def compare(
    models: list[str],
    datasets: list[str],
    *,
    out: str | os.PathLike = "runs/compare",
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    seed: int = 0,
    on_result=None,
    runner: Callable[[list[dict]], Iterable[tuple[str | None, str | None]]] | None = None,
    failures: list[str] | None = None,
) -> list[Entry]:
    """Train and test every model on every data set; the entries, best test accuracy first per data set.

    Each training is a dict (model, dataset, seed, folder, extra: the arguments of `digitlab
    train`). By default they run here one after another and the first failure stops the
    comparison; a `runner` (`digitlab.cluster.sweep`) runs them all and returns for each its run
    folder or why it failed, and a failure is added to `failures` while the others are compared."""
    failures = [] if failures is None else failures
    for name in models:
        get_preset(name)  # unknown names fail before anything trains
    for name in datasets:
        dataset_info(name)
    out = Path(out) / time.strftime("%Y%m%d-%H%M%S")
    extra = ("--no-plots",) + (("--limit", str(limit)) if limit else ())
    trainings = [{"model": name, "dataset": dataset, "seed": seed, "extra": extra,
                  "folder": str(out / f"{name}-{dataset_label(dataset)}")} for dataset in datasets for name in models]
    if runner is None:
        runner = partial(train_here, data_dir=data_dir)
    entries = []
    for training, (run_folder, error) in zip(trainings, runner(trainings)):
        if run_folder is None:
            failures.append(f"{training['model']} on {training['dataset']} (seed {seed}): {error}")
            continue
        run = open_run(run_folder)
        metrics = read_json(run.folder / METRICS_FILE)
        entry = Entry(training["model"], training["dataset"], float(metrics["test_accuracy"]),
                      float(metrics["train_seconds"]), float(metrics["predict_ms_per_1000"]),
                      run.model.stat().st_size, int(metrics["parameters"]), str(run.folder))
        entries.append(entry)
        if on_result is not None:
            on_result(entry)
    return sorted(entries, key=lambda e: (datasets.index(e.dataset), -e.test_accuracy))


COLUMNS = ("model", "dataset", "test accuracy", "training s", "prediction ms / 1,000 images", "size on disk",
           "parameters")


def row(e: Entry) -> list[str]:
    return [e.model, e.dataset, f"{e.test_accuracy:.2%}", f"{e.train_seconds:.1f}", f"{e.predict_ms_per_1000:.1f}",
            human_size(e.size_bytes), f"{e.parameters:,}"]


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def markdown(entries: list[Entry], failures: list[str] = ()) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(e)) + " |" for e in entries]
    if failures:
        lines += ["", "Failed (no complete run):", ""] + [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"


def write_leaderboard(entries: list[Entry], folder: str | os.PathLike, failures: list[str] = ()) -> list[Path]:
    """leaderboard.md (with the trainings that failed), leaderboard.csv and a self-contained
    leaderboard.html (plots inlined)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "leaderboard.md"
    write_text(md, markdown(entries, failures))
    table = folder / "leaderboard.csv"
    with atomic_write(table) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(entries[0])) if entries else ["model"])
        writer.writeheader()
        writer.writerows(asdict(e) for e in entries)
    page = folder / "leaderboard.html"
    write_text(page, html_page(entries))
    return [md, table, page]


def html_page(entries: list[Entry]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row(e)) + "</tr>" for e in entries)
    figure = data_url(plot_leaderboard(entries), dpi=100) if entries else ""
    image = f'<img alt="test accuracy against training time" src="{figure}">' if figure else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digitlab leaderboard</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1b1f24; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>digitlab leaderboard</h1>
<p>Each model trained with its preset's recipe and tested on the data set's test images
(generated {html.escape(time.strftime("%Y-%m-%d %H:%M"))}).</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{image}
</body></html>
"""
